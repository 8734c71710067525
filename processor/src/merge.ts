// SQL that moves one staged batch into the warehouse, inside the batch's transaction:
// fill unchanged TOAST values, drop events the warehouse already has, append history, merge
// the current rows. Pure text builders; writer.ts runs them.
import { columnDefault, factTable, latestTable, truncatesTable } from './ddl';
import type { TableModel } from './columns';
import { derivedName } from './names';
import { ident, idents, literal } from './sql';

/** The stage's own bookkeeping columns. `$` cannot occur in an Avro field name, so no source
 *  column (whose names come from Debezium's Avro schemas) can ever collide with them. */
export const STAGE_SEQ = 'cdc$seq';
export const STAGE_UNAVAILABLE = 'cdc$unavailable';
/** True: the event waits for its transaction's turn (the consistency watermark) to reach
 *  `<table>_latest`; the batch appends it to the history only. */
export const STAGE_DEFERRED = 'cdc$deferred';

/** Pipeline columns of the staging table, after the warehouse's data columns. */
export const STAGE_META: ReadonlyArray<readonly [string, string]> = [
  ['op', 'text'],
  ['source_ts', 'timestamp with time zone'],
  ['source_lsn', 'bigint'],
  ['source_txid', 'bigint'],
  ['kafka_topic', 'text'],
  ['kafka_partition', 'integer'],
  ['kafka_offset', 'bigint'],
  [STAGE_SEQ, 'integer'],
  [STAGE_UNAVAILABLE, 'text[]'],
  [STAGE_DEFERRED, 'boolean'],
];

export const stageTable = (table: string): string => derivedName(table, '', '_stage_');

/** A session-local staging table; its rows vanish at commit, so a batch never sees another's. */
export function createStageSql(table: string, columns: Array<[string, string]>): string[] {
  const defs = [...columns, ...STAGE_META].map(([n, t]) => `${ident(n)} ${t}`).join(', ');
  return [
    `DROP TABLE IF EXISTS pg_temp.${ident(stageTable(table))}`,
    `CREATE TEMP TABLE ${ident(stageTable(table))} (${defs}) ON COMMIT DELETE ROWS`,
  ];
}

export function copySql(table: string, columns: string[]): string {
  return `COPY pg_temp.${ident(stageTable(table))} (${idents([...columns, ...STAGE_META.map(([n]) => n)])}) FROM STDIN`;
}

const keyMatch = (keys: string[], a: string, b: string) => keys.map((k) => `${a}.${ident(k)} = ${b}.${ident(k)}`).join(' AND ');

export interface MergeSql {
  /** Unchanged TOASTed columns take the value of the key's previous version in the history
   *  (not `_latest`, which may not show it yet: its transaction can still be waiting). */
  fill: string[];
  /** Appends the stage to the history; events it already has (Debezium re-sends after a
   *  restart: same source position) are skipped there and removed from the stage, so that
   *  only new events reach the current rows. Its row count is the number of re-sent events. */
  appendFact: string;
  /** The same append when no staged event can be a re-send (MergeOptions.noResends): nothing
   *  comes back and nothing leaves the stage. Its row count must be the stage's; a conflict
   *  means the promise was wrong, and the caller must not go on with this batch. */
  appendFactNew: string;
  /** Null when every staged event is deferred (MergeOptions.immediateOnly). */
  mergeLatest: string | null;
  /** Removes from the stage the snapshot reads ('r') that change nothing: their data columns
   *  equal the key's state before them (the previous staged event of the key, or the current
   *  row). Null unless asked for (a batch without snapshot reads needs no such pass). Its row
   *  count is the number of unchanged reads. */
  dropUnchangedReads: string | null;
}

export interface MergeOptions {
  /** Column types (of `<table>_fact`); a type without equality (xml) is compared as text. */
  types?: Map<string, string>;
  /** The batch has snapshot reads: plan dropUnchangedReads. */
  snapshotReads?: boolean;
  /** Some staged events are deferred (STAGE_DEFERRED): only the others reach `_latest` now;
   *  'all': every one is, so there is no merge. */
  deferred?: boolean | 'all';
}

export function mergeSql(table: string, columns: string[], keys: string[], unavailableColumns: string[], options: MergeOptions = {}): MergeSql {
  const s = `pg_temp.${ident(stageTable(table))}`;
  const f = ident(factTable(table));
  const l = ident(latestTable(table));
  const cols = idents(columns);
  // The newest earlier version of the key, found through the history's unique index (led by
  // the key, then source_lsn); unresolvedSql has removed the events that have none.
  const fill = unavailableColumns.map(
    (c) => `UPDATE ${s} AS s SET ${ident(c)} = (SELECT h.${ident(c)} FROM ${f} AS h WHERE ${keyMatch(keys, 'h', 's')} AND h.source_lsn < s.source_lsn AND h.op <> 'd' ORDER BY h.source_lsn DESC LIMIT 1) ` +
      `WHERE ${literal(c)} = ANY (s.${ident(STAGE_UNAVAILABLE)})`,
  );
  // ON CONFLICT probes the unique (source_lsn, op, key) index per row; an anti-join against the
  // whole history instead would be planned as a scan of it, growing with every batch.
  const insertFact =
    `INSERT INTO ${f} (${cols}, op, source_ts, source_lsn, source_txid, kafka_topic, kafka_partition, kafka_offset, processed_at) ` +
    `SELECT ${cols}, op, source_ts, source_lsn, source_txid, kafka_topic, kafka_partition, kafka_offset, now() FROM ${s} ORDER BY ${ident(STAGE_SEQ)} ` +
    `ON CONFLICT DO NOTHING`;
  const appendFactNew = insertFact;
  const appendFact =
    `WITH appended AS (${insertFact} RETURNING kafka_topic, kafka_partition, kafka_offset) ` +
    `DELETE FROM ${s} AS s WHERE NOT EXISTS (SELECT 1 FROM appended AS a ` +
    `WHERE a.kafka_offset = s.kafka_offset AND a.kafka_partition = s.kafka_partition AND a.kafka_topic = s.kafka_topic)`;
  // The newest event per key decides the current row. A row never moves back to an older
  // version: the guard on source_lsn keeps what a later change already wrote.
  const nonKeys = columns.filter((c) => !keys.includes(c));
  const set = [...nonKeys, 'source_ts', 'source_lsn', 'processed_at'].map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ');
  const mergeLatest = options.deferred === 'all' ? null :
    `WITH last AS (SELECT DISTINCT ON (${idents(keys)}) * FROM ${s} ${options.deferred ? `WHERE NOT ${ident(STAGE_DEFERRED)} ` : ''}ORDER BY ${idents(keys)}, source_lsn DESC, ${ident(STAGE_SEQ)} DESC), ` +
    `gone AS (DELETE FROM ${l} AS l USING last WHERE last.op = 'd' AND ${keyMatch(keys, 'l', 'last')} AND l.source_lsn <= last.source_lsn) ` +
    `INSERT INTO ${l} AS l (${cols}, source_ts, source_lsn, processed_at) ` +
    `SELECT ${cols}, source_ts, source_lsn, now() FROM last WHERE op <> 'd' ` +
    // A delete or a truncate leaves no row to compare with: a change older than either, arriving
    // after it (another partition, a re-send), must not bring the row back. The fact table's
    // unique index, led by the key, finds a later delete of the key: probed per row (a scalar
    // subquery with LIMIT is never turned into a join, which would be planned as a scan of the
    // whole history); the newest truncate is read once per statement.
    `AND (SELECT 1 FROM ${f} AS d WHERE ${keyMatch(keys, 'd', 'last')} AND d.source_lsn > last.source_lsn AND d.op = 'd' LIMIT 1) IS NULL ` +
    `AND last.source_lsn > (SELECT coalesce(max(t.source_lsn), -1) FROM ${ident(truncatesTable(table))} AS t) ` +
    `ON CONFLICT (${idents(keys)}) DO UPDATE SET ${set} WHERE l.source_lsn <= EXCLUDED.source_lsn`;
  return { fill, appendFact, appendFactNew, mergeLatest, dropUnchangedReads: options.snapshotReads ? dropUnchangedReadsSql(table, columns, keys, options.types) : null };
}

/** See MergeSql.dropUnchangedReads. */
function dropUnchangedReadsSql(table: string, columns: string[], keys: string[], types = new Map<string, string>()): string {
  const s = `pg_temp.${ident(stageTable(table))}`;
  const l = ident(latestTable(table));
  const row = (alias: string) => `ROW(${columns.map((c) => (types.get(c) === 'xml' ? `${alias}.${ident(c)}::text` : `${alias}.${ident(c)}`)).join(', ')})`;
  return (
    `DELETE FROM ${s} AS s USING (SELECT x.${ident(STAGE_SEQ)} AS seq, lag(x.${ident(STAGE_SEQ)}) OVER (PARTITION BY ${keys.map((k) => `x.${ident(k)}`).join(', ')} ORDER BY x.source_lsn, x.${ident(STAGE_SEQ)}) AS prev FROM ${s} AS x) AS o ` +
    `WHERE s.op = 'r' AND o.seq = s.${ident(STAGE_SEQ)} AND CASE WHEN o.prev IS NULL ` +
    `THEN EXISTS (SELECT FROM ${l} AS l WHERE ${keyMatch(keys, 'l', 's')} AND ${row('l')} IS NOT DISTINCT FROM ${row('s')}) ` +
    `ELSE EXISTS (SELECT FROM ${s} AS p WHERE p.${ident(STAGE_SEQ)} = o.prev AND p.op <> 'd' AND ${row('p')} IS NOT DISTINCT FROM ${row('s')}) END`
  );
}

/**
 * A column the source added with a DEFAULT, in a batch that also holds changes from before the
 * ALTER (their schema lacks the column): those rows had the default at the source once the
 * ALTER ran, as every row then did, so they are staged with it rather than null. Only events
 * older (by LSN) than the first event of the batch that has the column: a column missing from
 * a newer event was dropped, and stays null. `events[i]` is the event staged with sequence number i.
 */
export function fillAddedDefaultsSql(table: string, events: Array<{ model: TableModel; lsn: bigint | null }>): Array<{ text: string; values: [number[]] }> {
  const out: Array<{ text: string; values: [number[]] }> = [];
  const models = [...new Set(events.map((e) => e.model))];
  if (models.length < 2) return out;
  const done = new Set<string>();
  for (const m of models) {
    for (const c of m.columns) {
      if (done.has(c.name)) continue;
      done.add(c.name);
      const d = columnDefault(c);
      if (!d || !('literal' in d)) continue;
      const has = (e: { model: TableModel }) => e.model.columns.some((x) => x.name === c.name);
      // An incremental snapshot read (no LSN) is the source as it is now: never before the ALTER.
      let first: bigint | null = null;
      for (const e of events) if (has(e) && e.lsn !== null && (first === null || e.lsn < first)) first = e.lsn;
      const seqs = events.flatMap((e, i) => (!has(e) && first !== null && e.lsn !== null && e.lsn < first ? [i] : []));
      if (seqs.length) {
        out.push({ text: `UPDATE pg_temp.${ident(stageTable(table))} SET ${ident(c.name)} = ${literal(d.literal)}::${c.pgType} WHERE ${ident(STAGE_SEQ)} = ANY ($1::integer[])`, values: [seqs] });
      }
    }
  }
  return out;
}

/**
 * Debezium's incremental snapshot reads carry no LSN (DBZ-4329). Their place in a key's history
 * is their place in the stream (Debezium emits a read only if the key did not change during the
 * read's window): after every change of the key before them, in the history or earlier in the
 * batch, and before any later change, whose LSN is higher than all of those. So a read takes
 * the key's greatest known LSN plus one.
 */
export function placeReadsSql(table: string, keys: string[]): string {
  const s = `pg_temp.${ident(stageTable(table))}`;
  const f = ident(factTable(table));
  const seq = ident(STAGE_SEQ);
  // One pass over the stage (a window per key, not a scan per read: a snapshot chunk is
  // thousands of reads); the history's maximum comes from its unique index led by the key. A
  // truncate the table had is a position too: a read after it must not sort before it.
  return `UPDATE ${s} AS s SET source_lsn = 1 + GREATEST(x.before, ` +
    `(SELECT max(h.source_lsn) FROM ${f} AS h WHERE ${keyMatch(keys, 'h', 's')}), ` +
    `(SELECT max(t.source_lsn) FROM ${ident(truncatesTable(table))} AS t), 0) ` +
    `FROM (SELECT ${seq} AS seq, max(source_lsn) OVER (PARTITION BY ${idents(keys)} ORDER BY ${seq} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM ${s}) AS x ` +
    `WHERE x.seq = s.${seq} AND s.source_lsn IS NULL`;
}
