// Transaction metadata in the warehouse (migration 0005): the END records Debezium writes to
// `<prefix>.transaction`, and per transaction and table the number of change events written.
// Both go into the batch's own transaction, so they are exactly once like the rows: an END
// re-sent is the same row (its id), an event re-sent is not appended again and not counted.
import type { ChangeEvent, TransactionEnd } from './decode';
import { collectionOf, splitTopic } from './topics';

/** Events accounted for (appended, or rejected with their reason) per (prefix, xid, table). */
export class TransactionCounts {
  private readonly counts = new Map<string, ProgressRow>();

  /** Counts `event` if Debezium placed it in a transaction (snapshot reads are in none). */
  add(topic: string, event: ChangeEvent): void {
    if (event.inTransaction && event.txId !== null) this.addXid(topic, event.txId, event.sourceTsMicros);
  }

  /** `sourceTsMicros`: the commit time the event carries, to the microsecond (the END record
   *  has milliseconds only; the watermark must reach the transaction's rows). */
  addXid(topic: string, xid: bigint, sourceTsMicros: bigint, n = 1): void {
    const parts = splitTopic(topic);
    const collection = collectionOf(topic);
    if (!parts || collection === null) return;
    const key = `${parts.prefix}\u0000${xid}\u0000${collection}`;
    const c = this.counts.get(key);
    if (c) {
      c.n += n;
      if (sourceTsMicros > c.lastTsMicros) c.lastTsMicros = sourceTsMicros;
    } else {
      this.counts.set(key, { prefix: parts.prefix, xid, collection, n, lastTsMicros: sourceTsMicros });
    }
  }

  get size(): number {
    return this.counts.size;
  }

  /** Sorted by (prefix, xid, collection): every lane locks the rows it shares with another
   *  (a transaction spanning partitions of both) in one order, so they wait, never deadlock. */
  rows(): ProgressRow[] {
    return [...this.counts.values()].sort((a, b) =>
      a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : a.xid < b.xid ? -1 : a.xid > b.xid ? 1 : a.collection < b.collection ? -1 : a.collection > b.collection ? 1 : 0);
  }
}

interface ProgressRow {
  prefix: string;
  xid: bigint;
  collection: string;
  n: number;
  lastTsMicros: bigint;
}

export function recordProgressSql(counts: TransactionCounts): { text: string; values: unknown[] } {
  const rows = counts.rows();
  return {
    text:
      'INSERT INTO cdc.transaction_progress AS p (topic_prefix, xid, collection, written, last_source_ts) ' +
      'SELECT a, b, c, d, timestamptz \'epoch\' + e * interval \'1 microsecond\' FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[]) WITH ORDINALITY AS u(a, b, c, d, e, o) ' +
      'ORDER BY o ' +
      'ON CONFLICT (topic_prefix, xid, collection) DO UPDATE SET written = p.written + EXCLUDED.written, ' +
      'last_source_ts = greatest(p.last_source_ts, EXCLUDED.last_source_ts)',
    values: [rows.map((r) => r.prefix), rows.map((r) => r.xid.toString()), rows.map((r) => r.collection), rows.map((r) => r.n), rows.map((r) => r.lastTsMicros.toString())],
  };
}

export function recordTransactionsSql(ends: Array<{ end: TransactionEnd; partition: number; offset: bigint }>): { text: string; values: unknown[] } {
  return {
    text:
      'INSERT INTO cdc.transactions (topic_prefix, id, xid, end_lsn, commit_ts, event_count, collections, kafka_partition, kafka_offset) ' +
      "SELECT a, b, c, d, to_timestamp(e::numeric / 1000), f, g, h, i FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::jsonb[], $8::int[], $9::bigint[]) AS u(a, b, c, d, e, f, g, h, i) " +
      // An END the watermark already passed (Debezium re-sent it after its row was dropped) is
      // not recorded again: the step only clears what lies beyond the watermark.
      'WHERE d > coalesce((SELECT w.consistent_lsn FROM cdc.consistency AS w WHERE w.topic_prefix = a), -1) ' +
      'ON CONFLICT DO NOTHING',
    values: [
      ends.map((x) => x.end.prefix), ends.map((x) => x.end.id), ends.map((x) => x.end.xid.toString()), ends.map((x) => x.end.endLsn.toString()),
      ends.map((x) => x.end.commitTsMs.toString()), ends.map((x) => x.end.eventCount.toString()), ends.map((x) => JSON.stringify(x.end.collections)),
      ends.map((x) => x.partition), ends.map((x) => x.offset.toString()),
    ],
  };
}
