// Events that cannot be loaded go to cdc.rejected_events with their reason and raw bytes,
// in the same transaction that moves the offsets past them.
import type { ClientBase } from 'pg';

export interface Reject {
  topic: string;
  partition: number;
  offset: bigint;
  table: string;
  stage: 'decode' | 'schema' | 'validate' | 'load';
  reason: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Decoded payload as JSON text, when it could be decoded. */
  payload: string | null;
}

export async function insertRejects(client: ClientBase, rejects: Reject[]): Promise<void> {
  if (rejects.length === 0) return;
  const col = <T>(f: (r: Reject) => T) => rejects.map(f);
  await client.query(
    `INSERT INTO cdc.rejected_events (topic, partition, "offset", source_table, stage, reason, key_raw, value_raw, payload)
     SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::jsonb[])
     ON CONFLICT (topic, partition, "offset") DO NOTHING`,
    [
      col((r) => r.topic),
      col((r) => r.partition),
      col((r) => r.offset.toString()),
      col((r) => r.table),
      col((r) => r.stage),
      col((r) => r.reason),
      col((r) => r.key),
      col((r) => r.value),
      col((r) => r.payload),
    ],
  );
}

/**
 * Which rejects to log: the first of each (table, stage, reason), then at most one a minute with
 * the count of the same ones since. A column type change rejects every later event of its table,
 * thousands a minute under load: one line each buried everything else in the log. The count of
 * the last minute is told by the next one of that reason (cdc.rejected_events has them all).
 */
export class RejectLog {
  private readonly seen = new Map<string, { loggedAt: number; since: number }>();

  constructor(private readonly everyMs = 60_000) {}

  /** null: count it, do not log; else log it, with how many of the same were not logged since. */
  take(r: Pick<Reject, 'table' | 'stage' | 'reason'>, now = Date.now()): { notLoggedSince: number } | null {
    const key = `${r.table}\u0000${r.stage}\u0000${r.reason}`;
    const s = this.seen.get(key);
    if (s && now - s.loggedAt < this.everyMs) {
      s.since++;
      return null;
    }
    // Validate and schema reasons are few (column and rule, never a value); load and decode
    // reasons may carry a value, so each may be its own key: bounded all the same.
    if (!s && this.seen.size >= 10_000) this.seen.clear();
    this.seen.set(key, { loggedAt: now, since: 0 });
    return { notLoggedSince: s?.since ?? 0 };
  }
}
