// The SQL side of verify: normalised row hashes streamed by key, cheap whole-table
// fingerprints for the wait loop, and the checks on orders_fact.
import { Client } from 'pg';
import { KeyedHash } from './merge';
import { tableExists } from './db';

/** The contract's 7 source columns, compared on both sides. */
export const ORDER_COLUMNS = ['order_id', 'customer_id', 'product_name', 'amount', 'status', 'created_at', 'updated_at'] as const;

/**
 * One text form per row version: the record's text output quotes and escapes every field and
 * writes NULL differently from '', and with TimeZone = UTC a timestamptz prints the same
 * instant the same way on both sides, whatever the servers' own time zones.
 */
const ROW_TEXT = `ROW(${ORDER_COLUMNS.join(', ')})::text`;

/** Same session settings on both sides, so that text forms are comparable. */
export async function normaliseSession(client: Client): Promise<void> {
  await client.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1");
}

export interface Fingerprint {
  rows: number;
  /** Order-independent sum of 60-bit row hashes: equal tables give equal sums. */
  sum: string;
}

/** A whole table summarised in one row: cheap enough to poll every second. Null if absent. */
export async function fingerprint(client: Client, table: string, exclude: readonly string[] = []): Promise<Fingerprint | null> {
  if (!(await tableExists(client, table))) return null;
  const r = await client.query<{ n: string; s: string }>(
    `SELECT count(*)::text AS n, coalesce(sum(('x' || left(md5(${ROW_TEXT}), 15))::bit(60)::bigint), 0)::text AS s
     FROM ${table} WHERE order_id <> ALL($1::bigint[])`,
    [exclude],
  );
  return { rows: Number(r.rows[0].n), sum: r.rows[0].s };
}

export function sameFingerprint(a: Fingerprint | null, b: Fingerprint | null): boolean {
  return (a?.rows ?? 0) === (b?.rows ?? 0) && (a?.sum ?? '0') === (b?.sum ?? '0');
}

/**
 * (key, md5 of the row's text form) in key order, fetched in batches from a cursor inside one
 * read-only snapshot; the next batch is requested while the caller compares the current one.
 */
export async function* hashBatches(client: Client, table: string, exclude: readonly string[] = [], batchSize = 10_000): AsyncGenerator<KeyedHash[]> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  let completed = false;
  try {
    await client.query(
      `DECLARE verify_rows NO SCROLL CURSOR FOR
       SELECT order_id::text AS k, md5(${ROW_TEXT}) AS h FROM ${table} WHERE order_id <> ALL($1::bigint[]) ORDER BY order_id`,
      [exclude],
    );
    const fetch = () => {
      const p = client.query<[string, string]>({ text: `FETCH FORWARD ${batchSize} FROM verify_rows`, rowMode: 'array' });
      p.catch(() => undefined); // awaited below; this only keeps an abandoned prefetch from crashing the process
      return p;
    };
    let next = fetch();
    for (;;) {
      const r = await next;
      if (r.rows.length === 0) break;
      next = fetch();
      yield r.rows.map(([k, h]) => ({ key: BigInt(k), hash: h }));
    }
    completed = true;
  } finally {
    await client.query(completed ? 'COMMIT' : 'ROLLBACK').catch(() => undefined);
  }
}

export type RowText = Record<string, string | null>;

/** The 7 columns of some keys as text, to show which columns differ. */
export async function fetchRows(client: Client, table: string, keys: bigint[]): Promise<Map<string, RowText>> {
  if (keys.length === 0) return new Map();
  const r = await client.query<RowText>(
    `SELECT ${ORDER_COLUMNS.map((c) => `${c}::text AS ${c}`).join(', ')} FROM ${table} WHERE order_id = ANY($1::bigint[])`,
    [keys.map(String)],
  );
  return new Map(r.rows.map((row) => [row.order_id as string, row]));
}

export interface FactCheck {
  total: number;
  byOp: Record<string, number>;
  keys: number;
  /** Rows whose (source_lsn, op, order_id) appears more than once, beyond the first. */
  duplicateRows: number;
  duplicateSamples: { orderId: string; op: string; lsn: string; copies: number }[];
  nullPositions: number;
  /** Keys whose history breaks a rule, e.g. starts with 'u' or continues after 'd'. */
  badHistoryKeys: number;
  badHistorySamples: { orderId: string; op: string; prevOp: string | null; lsn: string | null; rule: string }[];
  /** Keys where the last fact event does not match orders_latest. */
  lastEventMismatches: number;
  lastEventSamples: { orderId: string; lastOp: string | null; inLatest: boolean; rule: string }[];
}

// Per key, events in the order they happened: for one row, PostgreSQL's row locks make LSN
// order the commit order; the Kafka position breaks ties among snapshot ('r') reads.
const EVENT_ORDER = 'source_lsn NULLS LAST, kafka_partition, kafka_offset';
const EVENT_ORDER_DESC = 'source_lsn DESC NULLS LAST, kafka_partition DESC, kafka_offset DESC';

/**
 * @param excuse keys with a rejected event: their history has a recorded gap by design, so the
 *   history and last-event rules do not apply to them (duplicates still count).
 */
export async function checkFacts(client: Client, limit: number, excuse: readonly string[] = []): Promise<FactCheck> {
  // A source TRUNCATE (recorded in orders_truncates once the table has had one) ends every row
  // before it, without a delete event per row: a key whose last event precedes the last truncate
  // is rightly absent from orders_latest, and a key created again after one starts anew.
  const truncated = (await client.query<{ t: boolean }>("SELECT to_regclass('public.orders_truncates') IS NOT NULL AS t")).rows[0].t;
  const lastTruncate = truncated ? '(SELECT max(source_lsn) FROM public.orders_truncates)' : 'NULL::bigint';
  const truncatedBetween = truncated
    ? 'EXISTS (SELECT FROM public.orders_truncates AS t WHERE t.source_lsn > ev.prev_lsn AND t.source_lsn < ev.source_lsn)'
    : 'false';
  const totals = await client.query<{ op: string; n: string }>('SELECT op, count(*)::text AS n FROM public.orders_fact GROUP BY op');
  const byOp: Record<string, number> = {};
  for (const r of totals.rows) byOp[r.op] = Number(r.n);
  const total = Object.values(byOp).reduce((a, b) => a + b, 0);

  const keys = await client.query<{ n: string; nulls: string }>(
    'SELECT count(DISTINCT order_id)::text AS n, count(*) FILTER (WHERE source_lsn IS NULL)::text AS nulls FROM public.orders_fact',
  );

  const dups = await client.query<{ id: string; op: string; lsn: string; copies: number; rows_total: string }>(
    `WITH d AS (
       SELECT order_id, op, source_lsn, count(*)::int AS copies FROM public.orders_fact
       WHERE source_lsn IS NOT NULL GROUP BY order_id, op, source_lsn HAVING count(*) > 1)
     SELECT order_id::text AS id, op, source_lsn::text AS lsn, copies, sum(copies - 1) OVER ()::text AS rows_total
     FROM d ORDER BY order_id, source_lsn LIMIT $1`,
    [limit],
  );

  const history = await client.query<{ id: string; op: string; prev_op: string | null; lsn: string | null; rule: string; keys_total: string }>(
    `WITH once AS (
       -- Exact duplicates are reported above; here each event counts once.
       SELECT DISTINCT ON (order_id, op, source_lsn) order_id, op, source_lsn, kafka_partition, kafka_offset
       FROM public.orders_fact WHERE order_id <> ALL($2::bigint[])
       ORDER BY order_id, op, source_lsn, kafka_partition, kafka_offset),
     ev AS (
       SELECT order_id, op, source_lsn, lag(op) OVER w AS prev_op, lag(source_lsn) OVER w AS prev_lsn, row_number() OVER w AS n
       FROM once WINDOW w AS (PARTITION BY order_id ORDER BY ${EVENT_ORDER})),
     bad AS (
       SELECT DISTINCT ON (order_id) order_id, op, prev_op, source_lsn,
              CASE WHEN n = 1 THEN 'first event is not a create or snapshot read'
                   WHEN prev_op = 'd' THEN 'event after a delete'
                   ELSE 'create of a row that already exists' END AS rule
       FROM ev
       WHERE (n = 1 AND op NOT IN ('c', 'r')) OR (prev_op = 'd' AND op <> 'c') OR (op = 'c' AND n > 1 AND prev_op <> 'd' AND NOT ${truncatedBetween})
       ORDER BY order_id, n)
     SELECT order_id::text AS id, op, prev_op, source_lsn::text AS lsn, rule, count(*) OVER ()::text AS keys_total
     FROM bad ORDER BY order_id LIMIT $1`,
    [limit, excuse],
  );

  // The end of every history must be what orders_latest holds: this catches a lost last event
  // (a gap at the end of a key's history) and a latest row that no event explains.
  const last = await client.query<{ id: string; last_op: string | null; in_latest: boolean; rule: string; keys_total: string }>(
    `WITH last AS (
       SELECT DISTINCT ON (order_id) order_id, op, md5(${ROW_TEXT}) AS h, coalesce(source_lsn < ${lastTruncate}, false) AS truncated
       FROM public.orders_fact WHERE order_id <> ALL($2::bigint[]) ORDER BY order_id, ${EVENT_ORDER_DESC}),
     cur AS (SELECT order_id, md5(${ROW_TEXT}) AS h FROM public.orders_latest WHERE order_id <> ALL($2::bigint[])),
     bad AS (
       SELECT coalesce(l.order_id, c.order_id) AS order_id, l.op AS last_op, c.order_id IS NOT NULL AS in_latest,
              CASE WHEN l.order_id IS NULL THEN 'in orders_latest but no event in orders_fact'
                   WHEN c.order_id IS NULL THEN 'last event is not a delete but the row is missing from orders_latest'
                   WHEN l.op = 'd' THEN 'last event is a delete but the row is in orders_latest'
                   WHEN l.truncated THEN 'a TRUNCATE came after its last event but the row is in orders_latest'
                   ELSE 'orders_latest differs from the last event' END AS rule
       FROM last l FULL JOIN cur c ON c.order_id = l.order_id
       WHERE (c.order_id IS NULL AND l.op <> 'd' AND NOT l.truncated)
          OR (c.order_id IS NOT NULL AND (l.order_id IS NULL OR l.op = 'd' OR l.truncated OR l.h <> c.h)))
     SELECT order_id::text AS id, last_op, in_latest, rule, count(*) OVER ()::text AS keys_total FROM bad ORDER BY order_id LIMIT $1`,
    [limit, excuse],
  );

  return {
    total,
    byOp,
    keys: Number(keys.rows[0].n),
    duplicateRows: Number(dups.rows[0]?.rows_total ?? 0),
    duplicateSamples: dups.rows.map((r) => ({ orderId: r.id, op: r.op, lsn: r.lsn, copies: r.copies })),
    nullPositions: Number(keys.rows[0].nulls),
    badHistoryKeys: Number(history.rows[0]?.keys_total ?? 0),
    badHistorySamples: history.rows.map((r) => ({ orderId: r.id, op: r.op, prevOp: r.prev_op, lsn: r.lsn, rule: r.rule })),
    lastEventMismatches: Number(last.rows[0]?.keys_total ?? 0),
    lastEventSamples: last.rows.map((r) => ({ orderId: r.id, lastOp: r.last_op, inLatest: r.in_latest, rule: r.rule })),
  };
}

export interface Rejected {
  /** All rejected events (any table, any stage). */
  total: number;
  /** order_id → reason of its first rejected event, where the event could be decoded. */
  byKey: Map<string, string>;
}

/**
 * Events the processor refused, with the orders keys they concern: a rejected row is missing
 * from the warehouse by design, and verify says so next to the key. Null if not readable.
 */
export async function rejectedEvents(client: Client): Promise<Rejected | null> {
  try {
    const total = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM cdc.rejected_events');
    // The payload is whatever the processor could decode: its own {op, row} form or a raw
    // Debezium envelope. Only keys that are plainly integers are taken.
    const keys = await client.query<{ id: string; reason: string }>(
      `SELECT DISTINCT ON (id) id, reason FROM (
         SELECT coalesce(payload->'row'->>'order_id', payload->'after'->>'order_id', payload->'before'->>'order_id',
                         payload->'key'->>'order_id') AS id, reason, "offset", partition
         FROM cdc.rejected_events WHERE source_table IN ('orders', 'public.orders')) r
       WHERE id ~ '^-?[0-9]{1,18}$' ORDER BY id, partition, "offset" LIMIT 100000`,
    );
    return { total: Number(total.rows[0].n), byKey: new Map(keys.rows.map((r) => [BigInt(r.id).toString(), r.reason])) };
  } catch {
    return null;
  }
}
