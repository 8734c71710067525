// Consumed positions, kept in the warehouse beside the rows they produced (cdc.offsets).
// The value stored is the next offset to consume.
import type { ClientBase, Pool, QueryResult } from 'pg';
import type { OffsetGap } from './errors';
import { inlineParams, type Statement } from './sql';

export const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export interface TopicPartition {
  topic: string;
  partition: number;
}

/**
 * Locks the offset rows of a batch's partitions for the rest of its transaction and returns
 * them. A second processor writing the same partitions (during a rebalance) waits here and
 * then sees what the first committed, so an event is never written twice.
 */
export async function lockOffsets(
  client: ClientBase, group: string, tps: TopicPartition[], maxLsn?: Map<string, bigint | null>,
  opts: { begin?: boolean; reads?: Statement[] } = {},
): Promise<{ stored: Map<string, bigint>; reads: Array<Record<string, unknown> | undefined> }> {
  const topics = tps.map((t) => t.topic);
  const partitions = tps.map((t) => t.partition);
  const lock: Statement = {
    text: `SELECT topic, partition, next_offset::text AS next, max_source_lsn::text AS max_lsn FROM cdc.offsets
     WHERE consumer_group = $1 AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))
     ORDER BY topic, partition FOR UPDATE`,
    values: [group, topics, partitions],
  };
  const select = () => client.query(lock.text, lock.values);
  // The rows exist after a partition's first batch: one round trip then. A new partition's row
  // is made first (ON CONFLICT: another writer may make it at the same moment), then locked.
  // `begin`: the batch's BEGIN goes with the lock in one simple-protocol message, one round trip
  // less per batch (values as literals, since that protocol takes no parameters); so do
  // `reads`, one row each at most, returned in their order.
  const reads = opts.reads ?? [];
  if (reads.length && !opts.begin) throw new Error('lockOffsets: reads ride on the BEGIN message only');
  let readRows: Array<Record<string, unknown> | undefined> = [];
  let res: QueryResult;
  if (opts.begin) {
    const results = (await client.query(['BEGIN', inlineParams(lock), ...reads.map(inlineParams)].join(';\n'))) as unknown as QueryResult[];
    res = results[1];
    readRows = results.slice(2).map((r) => r.rows[0]);
  } else {
    res = await select();
  }
  if (res.rows.length < tps.length) {
    await client.query(
      `INSERT INTO cdc.offsets (consumer_group, topic, partition, next_offset)
       SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS x(t, p)
       ON CONFLICT DO NOTHING`,
      [group, topics, partitions],
    );
    res = await select();
  }
  for (const r of res.rows) maxLsn?.set(tpKey(r.topic, r.partition), r.max_lsn === null ? null : BigInt(r.max_lsn));
  return { stored: new Map(res.rows.map((r) => [tpKey(r.topic, r.partition), BigInt(r.next)])), reads: readRows };
}

/** Where each partition of a batch starts, checked against the stored offsets (pure). A
 *  partition's events below its stored offset are already stored; the first one at or above it
 *  must continue from it (`from`, default its own offset, at most the stored offset). */
export function findGaps(
  items: ReadonlyArray<{ topic: string; partition: number; offset: bigint; from?: bigint }>,
  stored: ReadonlyMap<string, bigint>,
): OffsetGap[] {
  const checked = new Set<string>();
  const gaps: OffsetGap[] = [];
  for (const i of items) {
    const key = tpKey(i.topic, i.partition);
    const at = stored.get(key) ?? 0n;
    if (checked.has(key) || i.offset < at) continue;
    checked.add(key);
    if ((i.from ?? i.offset) > at) gaps.push({ topic: i.topic, partition: i.partition, stored: at, first: i.offset });
  }
  return gaps;
}

/** Where to read a partition from on start or after a rebalance (pure). The warehouse's stored
 *  offset is the truth; without one, everything the topic still holds is read. `cover` is the
 *  position the first message read continues from (what the writer checks), `seek` where to
 *  read, and `lost` how many offsets retention already deleted before they were stored. */
export function startPosition(stored: bigint | null, low: bigint): { cover: bigint; seek: bigint; lost: bigint } {
  const cover = stored ?? 0n;
  const seek = low > cover ? low : cover;
  return { cover, seek, lost: seek - cover };
}

/** Sets the stored positions to exactly the next offset after the batch. findGaps ran under the
 *  same row locks and offsets below the stored ones were dropped, so this only moves forward;
 *  no GREATEST here, which would hide a batch that does not fit. */
export function saveOffsetsSql(group: string, next: Map<string, { tp: TopicPartition; offset: bigint; maxLsn?: bigint | null }>): Statement | null {
  const rows = [...next.values()];
  if (rows.length === 0) return null;
  // max_source_lsn: the highest source LSN this group appended from the partition (writer.ts:
  // a batch entirely above it cannot hold a Debezium re-send).
  return {
    text:
      `UPDATE cdc.offsets AS o SET next_offset = x.n, updated_at = now(), max_source_lsn = greatest(o.max_source_lsn, x.m)
     FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[]) AS x(t, p, n, m)
     WHERE o.consumer_group = $1 AND o.topic = x.t AND o.partition = x.p`,
    values: [group, rows.map((r) => r.tp.topic), rows.map((r) => r.tp.partition), rows.map((r) => r.offset.toString()), rows.map((r) => r.maxLsn?.toString() ?? null)],
  };
}

export async function saveOffsets(client: ClientBase, group: string, next: Map<string, { tp: TopicPartition; offset: bigint; maxLsn?: bigint | null }>): Promise<void> {
  const q = saveOffsetsSql(group, next);
  if (q) await client.query(q.text, q.values);
}

/** The stored position of one partition, or null when none is stored yet. */
export async function readOffset(client: ClientBase | Pool, group: string, tp: TopicPartition): Promise<bigint | null> {
  const res = await client.query(
    'SELECT next_offset::text AS next FROM cdc.offsets WHERE consumer_group = $1 AND topic = $2 AND partition = $3',
    [group, tp.topic, tp.partition],
  );
  return res.rows.length ? BigInt(res.rows[0].next) : null;
}
