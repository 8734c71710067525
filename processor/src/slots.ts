// The source's replication slots as the processor's /metrics shows them: how much WAL each slot
// keeps (restart_lsn) and has not confirmed (confirmed_flush_lsn), and how old its oldest
// unconfirmed commit is — the cost of capture on the source, and the first sign of a stalled
// connector. Read through a monitoring role (pg_monitor, plus pg_walinspect's reader for the age).
import type { Pool } from 'pg';

export interface SlotState {
  slot: string;
  active: boolean;
  /** PostgreSQL removed WAL the slot still needed (wal_status 'lost'): the slot is useless. */
  invalidated: boolean;
  retainedBytes: number | null;
  unconfirmedBytes: number | null;
  /** Seconds since the oldest commit the slot has not confirmed; 0: nothing unconfirmed; null: unknown. */
  oldestUnconfirmedSeconds: number | null;
}

/** How far the WAL is read for the age of the oldest unconfirmed commit (bounded work per scrape). */
const AGE_SCAN_BYTES = 64 * 1024 * 1024;

export const SLOTS_SQL = `
SELECT s.slot_name AS slot, s.active, coalesce(s.wal_status = 'lost', false) AS invalidated,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::float8 AS retained,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::float8 AS unconfirmed,
       s.confirmed_flush_lsn::text AS confirmed
  FROM pg_replication_slots s WHERE s.slot_type = 'logical' ORDER BY s.slot_name`;

// The first commit after the confirmed position, read from the WAL (pg_walinspect, PostgreSQL 15+).
export const OLDEST_COMMIT_SQL = `
SELECT extract(epoch FROM now() - split_part(w.description, ';', 1)::timestamptz)::float8 AS age
  FROM pg_get_wal_records_info($1::pg_lsn, least(pg_current_wal_lsn(), $1::pg_lsn + ${AGE_SCAN_BYTES})) AS w
 WHERE w.resource_manager = 'Transaction' AND w.record_type IN ('COMMIT', 'COMMIT_PREPARED')
 ORDER BY w.start_lsn LIMIT 1`;

/** Reads every logical slot of the source; the age is null where pg_walinspect cannot be read. */
export async function readSlots(pool: Pool): Promise<SlotState[]> {
  const rows = (await pool.query(SLOTS_SQL)).rows;
  const out: SlotState[] = [];
  for (const r of rows) {
    let age: number | null = null;
    if (r.unconfirmed !== null && Number(r.unconfirmed) <= 0) age = 0;
    else if (r.confirmed !== null) {
      try {
        const a = (await pool.query(OLDEST_COMMIT_SQL, [r.confirmed])).rows[0];
        // No commit in the unconfirmed WAL read: nothing waits (unless it was more than was read).
        age = a ? Math.max(0, Number(a.age)) : Number(r.unconfirmed) <= AGE_SCAN_BYTES ? 0 : null;
      } catch {
        age = null; // no pg_walinspect, or no right to read the WAL: the byte figures still stand
      }
    }
    out.push({
      slot: r.slot,
      active: r.active,
      invalidated: r.invalidated,
      retainedBytes: r.retained === null ? null : Number(r.retained),
      unconfirmedBytes: r.unconfirmed === null ? null : Number(r.unconfirmed),
      oldestUnconfirmedSeconds: age,
    });
  }
  return out;
}
