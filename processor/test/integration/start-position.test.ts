// Where a processor starts reading is the warehouse's decision, not Kafka's: a fresh warehouse
// (no cdc.offsets row) with an existing consumer group used to resume at the group's Kafka offset,
// silently dropping all earlier history. Real Kafka (the stack's broker, a topic of the test's own)
// and the real Pipeline, writing into a scratch warehouse.
import * as crypto from 'crypto';
import { kafkaAuthOptions, kafkaSecurityFromEnv } from '../../src/kafka-options';
import { createMetrics } from '../../src/metrics';
import { readOffset } from '../../src/offsets';
import { Pipeline } from '../../src/pipeline';
import { quietLog, scratchWarehouse, type Scratch } from './scratch';
import { useScratchKafka } from './scratch-kafka';

let wh: Scratch;
const { brokers, admin, topicWith, produce } = useScratchKafka('cdc-it-start');

beforeAll(async () => {
  wh = await scratchWarehouse();
});
afterAll(async () => {
  await wh?.drop();
});

/** A pipeline whose decoder turns every message into a reject, so each one read leaves a row. */
function pipeline(topic: string, group: string, log = quietLog()) {
  const decoder: any = { decode: async (_t: string, _k: Buffer | null, value: Buffer | null) => ({ kind: 'reject', stage: 'decode', table: topic, reason: `read ${value}` }) };
  return new Pipeline(
    { brokers, clientId: 'cdc-it-start', kafkaAuth: kafkaAuthOptions(kafkaSecurityFromEnv()), groupId: group, topics: [topic], topicPattern: '', limits: { maxEvents: 100, maxBytes: 1 << 20, lingerMs: 5 }, maxBackoffMs: 500 },
    decoder, [wh.writer({ group })], (tp) => readOffset(wh.admin, group, tp), createMetrics(), log,
  );
}

async function rejectedOffsets(topic: string, want: number): Promise<string[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const rows = (await wh.admin.query('SELECT "offset" FROM cdc.rejected_events WHERE topic = $1 ORDER BY 1', [topic])).rows.map((r) => r.offset);
    if (rows.length >= want || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('where a partition is read from', () => {
  it('without a stored offset, from the beginning, even when the group committed the end in Kafka', async () => {
    const topic = await topicWith(5);
    const group = `cdc-it-start-${crypto.randomBytes(4).toString('hex')}`;
    await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '5' }] });
    const p = pipeline(topic, group);
    await p.start();
    try {
      expect(await rejectedOffsets(topic, 5)).toEqual(['0', '1', '2', '3', '4']);
      expect(await readOffset(wh.admin, group, { topic, partition: 0 })).toBe(5n);
    } finally {
      await p.stop();
      await admin.deleteGroups([group]).catch(() => undefined);
    }
  });

  it('offsets already deleted by retention: from the earliest retained, with a warning naming what is gone', async () => {
    const topic = await topicWith(5);
    await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs finds the partition's leader from here
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '2' }] });
    const group = `cdc-it-start-${crypto.randomBytes(4).toString('hex')}`;
    const log = quietLog();
    const p = pipeline(topic, group, log);
    await p.start();
    try {
      expect(await rejectedOffsets(topic, 3)).toEqual(['2', '3', '4']);
      expect(await readOffset(wh.admin, group, { topic, partition: 0 })).toBe(5n);
      const warning = log.lines.find((l) => l.level === 'warn' && /retention/.test(l.message));
      expect(warning?.message).toContain(`${topic}[0]`);
      expect(warning?.fields).toMatchObject({ topic, partition: 0, lostOffsets: '2', earliestOffset: '2' });
    } finally {
      await p.stop();
      await admin.deleteGroups([group]).catch(() => undefined);
    }
  });

  it('a commit the warehouse lost is read again, not skipped: positions come from the warehouse, not memory', async () => {
    const topic = await topicWith(5);
    const group = `cdc-it-start-${crypto.randomBytes(4).toString('hex')}`;
    const p = pipeline(topic, group);
    await p.start();
    try {
      expect(await rejectedOffsets(topic, 5)).toHaveLength(5);
      // The warehouse crashed and lost the commit of offsets 2–4 (synchronous_commit = off);
      // the processor, still running, believes it is at 5.
      await wh.admin.query('UPDATE cdc.offsets SET next_offset = 2 WHERE consumer_group = $1', [group]);
      await wh.admin.query('DELETE FROM cdc.rejected_events WHERE topic = $1 AND "offset" >= 2', [topic]);
      await produce(topic, 5, 8);
      expect(await rejectedOffsets(topic, 8)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
      expect(await readOffset(wh.admin, group, { topic, partition: 0 })).toBe(8n);
    } finally {
      await p.stop();
      await admin.deleteGroups([group]).catch(() => undefined);
    }
  });

  it('after the warehouse connection drops, a partition whose commits were lost is read again even if nothing new arrives', async () => {
    const topic = await topicWith(5);
    const group = `cdc-it-start-${crypto.randomBytes(4).toString('hex')}`;
    const p = pipeline(topic, group);
    await p.start();
    try {
      expect(await rejectedOffsets(topic, 5)).toHaveLength(5);
      // The warehouse restarted and lost the commit of offsets 3–4; the partition stays quiet.
      await wh.admin.query('UPDATE cdc.offsets SET next_offset = 3 WHERE consumer_group = $1', [group]);
      await wh.admin.query('DELETE FROM cdc.rejected_events WHERE topic = $1 AND "offset" >= 3', [topic]);
      await wh.admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'cdc-processor'`, [wh.name]);
      expect(await rejectedOffsets(topic, 5)).toEqual(['0', '1', '2', '3', '4']);
      expect(await readOffset(wh.admin, group, { topic, partition: 0 })).toBe(5n);
    } finally {
      await p.stop();
      await admin.deleteGroups([group]).catch(() => undefined);
    }
  });
});
