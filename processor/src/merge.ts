// SQL that moves one staged batch into the warehouse, inside the batch's transaction:
// fill unchanged TOAST values, drop events the warehouse already has, append history, merge
// the current rows. Pure text builders; writer.ts runs them.
import { factTable, latestTable } from './ddl';
import { ident, idents, literal } from './sql';

/** Pipeline columns of the staging table, after the warehouse's data columns. */
export const STAGE_META: ReadonlyArray<readonly [string, string]> = [
  ['op', 'text'],
  ['source_ts', 'timestamp with time zone'],
  ['source_lsn', 'bigint'],
  ['source_txid', 'bigint'],
  ['kafka_topic', 'text'],
  ['kafka_partition', 'integer'],
  ['kafka_offset', 'bigint'],
  ['_seq', 'integer'],
  ['_unavailable', 'text[]'],
];

export const stageTable = (table: string): string => `_stage_${table}`;

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
  /** Unchanged TOASTed columns take the value the warehouse already has. */
  fill: string[];
  /** Appends the stage to the history; events it already has (Debezium re-sends after a
   *  restart: same source position) are skipped there and removed from the stage, so that
   *  only new events reach the current rows. Its row count is the number of re-sent events. */
  appendFact: string;
  mergeLatest: string;
}

export function mergeSql(table: string, columns: string[], keys: string[], unavailableColumns: string[]): MergeSql {
  const s = `pg_temp.${ident(stageTable(table))}`;
  const f = ident(factTable(table));
  const l = ident(latestTable(table));
  const cols = idents(columns);
  const fill = unavailableColumns.map(
    (c) => `UPDATE ${s} AS s SET ${ident(c)} = l.${ident(c)} FROM ${l} AS l WHERE ${keyMatch(keys, 's', 'l')} AND ${literal(c)} = ANY (s._unavailable)`,
  );
  // ON CONFLICT probes the unique (source_lsn, op, key) index per row; an anti-join against the
  // whole history instead would be planned as a scan of it, growing with every batch.
  const appendFact =
    `WITH appended AS (INSERT INTO ${f} (${cols}, op, source_ts, source_lsn, source_txid, kafka_topic, kafka_partition, kafka_offset, processed_at) ` +
    `SELECT ${cols}, op, source_ts, source_lsn, source_txid, kafka_topic, kafka_partition, kafka_offset, now() FROM ${s} ORDER BY _seq ` +
    `ON CONFLICT DO NOTHING RETURNING kafka_topic, kafka_partition, kafka_offset) ` +
    `DELETE FROM ${s} AS s WHERE NOT EXISTS (SELECT 1 FROM appended AS a ` +
    `WHERE a.kafka_offset = s.kafka_offset AND a.kafka_partition = s.kafka_partition AND a.kafka_topic = s.kafka_topic)`;
  // The newest event per key decides the current row. A row never moves back to an older
  // version: the guard on source_lsn keeps what a later change already wrote.
  const nonKeys = columns.filter((c) => !keys.includes(c));
  const set = [...nonKeys, 'source_ts', 'source_lsn', 'processed_at'].map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ');
  const mergeLatest =
    `WITH last AS (SELECT DISTINCT ON (${idents(keys)}) * FROM ${s} ORDER BY ${idents(keys)}, source_lsn DESC, _seq DESC), ` +
    `gone AS (DELETE FROM ${l} AS l USING last WHERE last.op = 'd' AND ${keyMatch(keys, 'l', 'last')} AND l.source_lsn <= last.source_lsn) ` +
    `INSERT INTO ${l} AS l (${cols}, source_ts, source_lsn, processed_at) ` +
    `SELECT ${cols}, source_ts, source_lsn, now() FROM last WHERE op <> 'd' ` +
    `ON CONFLICT (${idents(keys)}) DO UPDATE SET ${set} WHERE l.source_lsn <= EXCLUDED.source_lsn`;
  return { fill, appendFact, mergeLatest };
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
  // One pass over the stage (a window per key, not a scan per read: a snapshot chunk is
  // thousands of reads); the history's maximum comes from its unique index led by the key.
  return `UPDATE ${s} AS s SET source_lsn = 1 + GREATEST(x.before, ` +
    `(SELECT max(h.source_lsn) FROM ${f} AS h WHERE ${keyMatch(keys, 'h', 's')}), 0) ` +
    `FROM (SELECT _seq, max(source_lsn) OVER (PARTITION BY ${idents(keys)} ORDER BY _seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM ${s}) AS x ` +
    'WHERE x._seq = s._seq AND s.source_lsn IS NULL';
}
