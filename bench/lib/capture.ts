// Where ours' freshness goes: Debezium's part (source commit → the change event's Kafka
// timestamp, which Kafka Connect's producer sets when Debezium hands the record over) and the
// processor's part (Kafka timestamp → row visible in the warehouse). orders_fact keeps each
// event's partition and offset, so the Kafka timestamps are read back for exactly those offsets.
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClient } from '../../processor/src/kafka-options';
import type { Client } from 'pg';
import { TOPIC, type Window } from './systems';
import { quantile } from './util';

export interface Split {
  /** Source commit → Kafka timestamp (ms): Debezium, the registry and Kafka. */
  capture: { p50: number; p95: number; p99: number };
  /** Kafka timestamp → visible in bench_ours (ms): our processor. */
  processor: { p50: number; p95: number; p99: number };
  rows: number;
}

/** Kafka timestamps (ms) of the messages [from, to] of each partition. */
async function readTimestamps(brokers: string[], ranges: Map<number, [bigint, bigint]>, timeoutMs = 60_000): Promise<Map<number, Map<bigint, number>>> {
  const out = new Map<number, Map<bigint, number>>([...ranges.keys()].map((p) => [p, new Map()]));
  const kafka = kafkaClient({ clientId: 'cdc-bench-probe', brokers, logLevel: logLevel.NOTHING });
  const groupId = `cdc-bench-probe-${Date.now()}`;
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: 10 * 1024 * 1024, maxWaitTimeInMs: 100 });
  const pending = new Set(ranges.keys());
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: TOPIC, fromBeginning: false });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const range = ranges.get(batch.partition);
        if (!range) return;
        const m = out.get(batch.partition)!;
        for (const msg of batch.messages) {
          const o = BigInt(msg.offset);
          if (o >= range[0] && o <= range[1]) m.set(o, Number(msg.timestamp));
          if (o >= range[1]) pending.delete(batch.partition);
        }
        if (pending.size === 0) done();
      },
    });
    for (const [partition, [from]] of ranges) consumer.seek({ topic: TOPIC, partition, offset: from.toString() });
    await Promise.race([finished, new Promise((r) => setTimeout(r, timeoutMs))]);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect().then(() => admin.deleteGroups([groupId])).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
  return out;
}

/** The split of ours' freshness over the row versions of a window (bench_ours). */
export async function freshnessSplit(ours: Client, arrivalJoin: string, brokers: string[], w: Window): Promise<Split | null> {
  const r = await ours.query({
    text: `SELECT f.kafka_partition, f.kafka_offset::text, extract(epoch FROM f.updated_at) * 1000, extract(epoch FROM t.at) * 1000
           FROM public.orders_fact f ${arrivalJoin}
           WHERE f.op IN ('c', 'u') AND f.updated_at BETWEEN $1 AND $2`,
    values: [w.from, w.to],
    rowMode: 'array',
  });
  if (r.rows.length === 0) return null;
  const ranges = new Map<number, [bigint, bigint]>();
  for (const [p, o] of r.rows) {
    const off = BigInt(o);
    const cur = ranges.get(p);
    if (!cur) ranges.set(p, [off, off]);
    else {
      if (off < cur[0]) cur[0] = off;
      if (off > cur[1]) cur[1] = off;
    }
  }
  const ts = await readTimestamps(brokers, ranges);
  const capture: number[] = [];
  const processor: number[] = [];
  for (const [p, o, updated, arrived] of r.rows) {
    const k = ts.get(p)?.get(BigInt(o));
    if (k === undefined) continue;
    capture.push(k - Number(updated));
    processor.push(Number(arrived) - k);
  }
  if (capture.length === 0) return null;
  const q = (a: number[]) => {
    const s = Float64Array.from(a).sort();
    return { p50: quantile(s, 0.5), p95: quantile(s, 0.95), p99: quantile(s, 0.99) };
  };
  return { capture: q(capture), processor: q(processor), rows: capture.length };
}
