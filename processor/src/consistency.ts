// The consistency watermark (migrations 0005, 0006; docs/ARCHITECTURE.md §6b): one step,
// cdc.advance_consistency(), moves each source's watermark over the transactions that became
// whole since and merges their changes into `<table>_latest`; the gauges show it. The step is
// its own database transaction, run after the batches lanes commit (one at a time, at least
// APPLY_STEP_GAP_MS apart, one more if batches committed meanwhile) and every second: the END record and a transaction's
// events land through different lanes, each of whose commits alone may not see the other's, and
// a step on its own reads what all have committed.
import type { Pool } from 'pg';
import * as client from 'prom-client';
import type { Logger } from './log';
import type { Metrics } from './metrics';

export interface Watermark {
  source: string;
  consistentLsn: bigint | null;
  consistentThrough: Date | null;
  pending: number;
}

export async function advanceConsistency(pool: Pool): Promise<Watermark[]> {
  const { rows } = await pool.query('SELECT topic_prefix, consistent_lsn::text AS lsn, consistent_through, pending::int AS pending FROM cdc.advance_consistency()');
  return rows.map((r) => ({ source: r.topic_prefix, consistentLsn: r.lsn === null ? null : BigInt(r.lsn), consistentThrough: r.consistent_through, pending: r.pending }));
}

export interface ConsistencySteps {
  /** Asks for a step soon (a batch committed). */
  kick(): void;
  stop(): void;
}

/** Starts the periodic step; null (and a warning) when the warehouse lacks migration 0005. */
export async function startConsistency(pool: Pool, metrics: Metrics, log: Logger, intervalMs = 1000, minGapMs = 5): Promise<ConsistencySteps | null> {
  const present = (await pool.query("SELECT to_regprocedure('cdc.advance_consistency()') IS NOT NULL AS ok")).rows[0].ok;
  if (!present) {
    log.warn('warehouse has no cdc.advance_consistency() (migration 0005): no consistency watermark');
    return null;
  }
  const through = new client.Gauge({ name: 'cdc_consistent_through_seconds', help: 'Source commit time (Unix seconds) through which every transaction is in the warehouse whole', labelNames: ['source'], registers: [metrics.registry] });
  const lag = new client.Gauge({ name: 'cdc_consistency_lag_seconds', help: 'Now minus cdc_consistent_through_seconds', labelNames: ['source'], registers: [metrics.registry] });
  const pending = new client.Gauge({ name: 'cdc_transactions_pending', help: 'Recorded source transactions beyond the watermark', labelNames: ['source'], registers: [metrics.registry] });
  const stepSeconds = new client.Histogram({ name: 'cdc_consistency_step_seconds', help: 'Duration of one watermark step (advance and publish)', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [metrics.registry] });
  let failing = false;
  let busy = false;
  let again = false;
  let lastStart = 0;
  let lastMs = 0;
  let scheduled: NodeJS.Timeout | null = null;
  // Steps after batches are at least minGapMs apart, and at least as far apart as the last step
  // took: at a few changes per batch a step after every one would take much of a core of the
  // warehouse's CPU, and a step passes whatever became whole meanwhile.
  const kick = (): void => {
    if (stopped || scheduled) return;
    const wait = lastStart + Math.max(minGapMs, lastMs) - Date.now();
    if (wait <= 0) {
      void step();
      return;
    }
    scheduled = setTimeout(() => {
      scheduled = null;
      void step();
    }, wait);
  };
  const step = async (): Promise<void> => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    again = false;
    lastStart = Date.now();
    const end = stepSeconds.startTimer();
    try {
      for (const w of await advanceConsistency(pool)) {
        pending.set({ source: w.source }, w.pending);
        if (w.consistentThrough) {
          through.set({ source: w.source }, w.consistentThrough.getTime() / 1000);
          lag.set({ source: w.source }, (Date.now() - w.consistentThrough.getTime()) / 1000);
        }
      }
      if (failing) log.info('consistency watermark moves again');
      failing = false;
    } catch (err) {
      if (!failing) log.warn('cannot advance the consistency watermark; retrying', { error: err });
      failing = true;
    } finally {
      end();
      lastMs = Date.now() - lastStart;
      busy = false;
    }
    if (again) kick();
  };
  let stopped = false;
  const timer = setInterval(() => void step(), intervalMs);
  timer.unref();
  void step();
  return {
    kick,
    stop: () => {
      stopped = true;
      clearInterval(timer);
      if (scheduled) clearTimeout(scheduled);
    },
  };
}
