// A batch that starts past the stored offset must not commit: it would make the hole before it
// permanent. Seen with the real Lane at shutdown: a failing batch (offsets 0–4) was abandoned and
// the next open batch (5–7) committed, storing next_offset 8 with 0–4 never written.
import { Lane } from '../../src/lane';
import { OffsetGapError } from '../../src/errors';
import type { BatchItem, WarehouseWriter } from '../../src/writer';
import { quietLog, scratchWarehouse, type Scratch } from './scratch';
import { order, tableFixture } from './events';

let wh: Scratch;
beforeAll(async () => { wh = await scratchWarehouse(); });
afterAll(async () => { await wh?.drop(); });

const storedOffsets = async (group: string) =>
  (await wh.admin.query('SELECT partition, next_offset FROM cdc.offsets WHERE consumer_group = $1 ORDER BY partition', [group])).rows;

/** A real writer whose batches containing `failing` offsets fail as if the warehouse went away. */
function failingWriter(writer: WarehouseWriter, failing: (i: BatchItem) => boolean): WarehouseWriter {
  const write = writer.write.bind(writer);
  writer.write = async (items) => {
    if (items.some(failing)) throw new Error('Connection terminated unexpectedly');
    return write(items);
  };
  return writer;
}

describe('a batch must continue the stored offset of each of its partitions', () => {
  it('at shutdown, a batch after an abandoned one is not committed over the hole', async () => {
    const fx = tableFixture('gap_shutdown');
    const writer = failingWriter(wh.writer({ group: 'shutdown' }), (i) => i.offset < 5n);
    let stopping = false;
    const gaps: unknown[] = [];
    const hooks: any = {
      written: () => undefined, failing: () => undefined, recovered: () => undefined, writeError: () => undefined,
      stopping: () => stopping, backoff: () => 1, gap: (g: unknown[]) => gaps.push(...g),
    };
    const lane = new Lane(0, { maxEvents: 5, maxBytes: 1 << 30, lingerMs: 60_000 }, writer, hooks, quietLog());
    const heartbeat = async () => undefined;
    for (let o = 0n; o < 8n; o++) {
      // The pipeline's `from`: it read on from the previous message.
      const it = { ...(await fx.item(0, o, 'c', order(o + 1n), 100n + o)), from: o };
      expect(await lane.add(it, 10, heartbeat)).toBe(true);
    }
    stopping = true;
    await lane.drain();
    expect(await storedOffsets('shutdown')).not.toContainEqual(expect.objectContaining({ next_offset: '8' }));
    const written = await wh.admin.query(`SELECT to_regclass('gap_shutdown_fact') IS NOT NULL AS t`);
    if (written.rows[0].t) expect((await wh.admin.query('SELECT count(*)::int AS n FROM gap_shutdown_fact')).rows[0].n).toBe(0);
    expect(gaps).toEqual([expect.objectContaining({ topic: fx.topic, partition: 0 })]);
  });

  it('refuses a partition whose events start above the stored offset, naming it', async () => {
    const fx = tableFixture('gap_writer');
    const writer = wh.writer({ group: 'writer' });
    await writer.write([await fx.item(0, 0n, 'c', order(1n), 100n), await fx.item(1, 0n, 'c', order(2n), 101n)]);
    // Offsets 1 and 2 of partition 0 never reached the warehouse (a commit lost in a crash).
    const batch = [await fx.item(0, 3n, 'c', order(3n), 110n), await fx.item(1, 1n, 'c', order(4n), 111n)];
    const err = await writer.write(batch).catch((e) => e);
    expect(err).toBeInstanceOf(OffsetGapError);
    expect(err.code).toBe('OFFSET_GAP');
    expect(err.gaps).toEqual([{ topic: fx.topic, partition: 0, stored: 1n, first: 3n }]);
    expect(await storedOffsets('writer')).toEqual([{ partition: 0, next_offset: '1' }, { partition: 1, next_offset: '1' }]);
    expect((await wh.admin.query('SELECT count(*)::int AS n FROM gap_writer_fact')).rows[0].n).toBe(2);
  });

  it('drops what is already stored, and accepts offsets the consumer read across (markers, compaction)', async () => {
    const fx = tableFixture('gap_across');
    const writer = wh.writer({ group: 'across' });
    await writer.write([await fx.item(0, 0n, 'c', order(1n), 100n), await fx.item(0, 1n, 'c', order(2n), 101n)]);
    const result = await writer.write([
      await fx.item(0, 1n, 'c', order(2n), 101n),
      // Offset 2 is a transaction marker: the consumer read on from 2 to 3.
      { ...(await fx.item(0, 3n, 'c', order(3n), 110n)), from: 2n },
    ]);
    expect(result.alreadyStored).toBe(1);
    expect(await storedOffsets('across')).toEqual([{ partition: 0, next_offset: '4' }]);
  });
});
