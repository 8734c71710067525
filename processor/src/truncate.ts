// A TRUNCATE at the source (Debezium sends one event per truncated table, with no row): the
// warehouse empties `<table>_latest` and records the instant in `<table>_truncates`, which
// `<table>_history` and `<table>_as_of(ts)` read (see history.ts): a version that started before
// a truncate ends at it. Pure SQL builders; writer.ts runs them in the batch's transaction, in
// the batch's order.
import { derivedName } from './names';
import { ident } from './sql';

export const truncatesOf = (table: string): string => derivedName(table, '_truncates');

/** One row per source truncate; the LSN identifies it (a Debezium re-send has the same). */
export function createTruncatesSql(table: string): string {
  return (
    `CREATE TABLE IF NOT EXISTS public.${ident(truncatesOf(table))} (source_lsn bigint PRIMARY KEY, ` +
    'source_ts timestamp with time zone NOT NULL, source_txid bigint, kafka_topic text, kafka_partition integer, ' +
    'kafka_offset bigint, processed_at timestamp with time zone NOT NULL DEFAULT now())'
  );
}

export interface TruncateEvent {
  lsn: bigint;
  /** Source commit time, µs since the epoch. */
  sourceTsMicros: bigint;
  txId: bigint | null;
  topic: string;
  partition: number;
  offset: bigint;
}

/** Records the truncate ($1 lsn, $2 commit time as ISO text, $3 txid, $4-$6 Kafka position). */
export function recordTruncateSql(table: string): string {
  return (
    `INSERT INTO public.${ident(truncatesOf(table))} (source_lsn, source_ts, source_txid, kafka_topic, kafka_partition, kafka_offset) ` +
    'VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source_lsn) DO NOTHING'
  );
}

/** Empties the current rows the truncate removed: those older than it. A row written by a later
 *  change (another partition may bring it first) stays. $1 is the truncate's LSN. */
export function emptyLatestSql(latest: string): string {
  return `DELETE FROM public.${ident(latest)} WHERE source_lsn < $1`;
}
