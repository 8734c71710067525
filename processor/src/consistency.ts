// The consistency watermark (migrations 0005, 0006; docs/ARCHITECTURE.md §6b): one step,
// cdc.advance_consistency(), moves each source's watermark over the transactions that became
// whole since and merges their changes into `<table>_latest`; the gauges show it. The step is
// its own database transaction, run after the batches lanes commit (one at a time, at least
// APPLY_STEP_GAP_MS apart, one more if batches committed meanwhile) and every second: the END record and a transaction's
// events land through different lanes, each of whose commits alone may not see the other's, and
// a step on its own reads what all have committed. A step is never cut (a catch-up over many
// transactions takes seconds), but one still running after APPLY_SLOW_STEP_WARN_MS is logged with
// what its session waits for: a watermark that stops should name its cause.
import type { Pool } from 'pg';
import * as client from 'prom-client';
import type { Logger } from './log';
import { withClient } from './pool-client';
import type { Metrics } from './metrics';

export interface Watermark {
  source: string;
  consistentLsn: bigint | null;
  consistentThrough: Date | null;
  pending: number;
}

/** One step. `onSession` learns the step's backend before it runs (for the slow-step report).
 *  `countPending` false leaves `pending` as the last step that counted it left it (migration
 *  0010): counting costs more than the rest of a step when the END records run ahead. null: a
 *  warehouse without 0010, whose step counts every time. */
export async function advanceConsistency(pool: Pool, onSession?: (pid: number) => void, countPending: boolean | null = true): Promise<Watermark[]> {
  return withClient(pool, async (c) => {
    const pid = (c as unknown as { processID?: number }).processID;
    if (pid) onSession?.(pid);
    // A step need not wait for its commit to reach disk: WAL is written in order, so a step lost
    // in a warehouse crash loses nothing that later steps or batches relied on, and the next step
    // does it again from the same rows. Set for this transaction in the step's own statement: a
    // SET sent when the pool connects would race the step's query on the same client.
    const { rows } = await c.query(
      `SELECT topic_prefix, consistent_lsn::text AS lsn, consistent_through, pending::int AS pending
         FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async, ${countPending === null ? 'cdc.advance_consistency()' : `cdc.advance_consistency(${countPending})`}`);
    return rows.map((r) => ({ source: r.topic_prefix, consistentLsn: r.lsn === null ? null : BigInt(r.lsn), consistentThrough: r.consistent_through, pending: r.pending }));
  });
}

export interface ConsistencySteps {
  /** Asks for a step soon (a batch committed). */
  kick(): void;
  stop(): void;
}

export interface StepOptions {
  /** A step at least this often, batches or not. */
  intervalMs?: number;
  /** The least time between two steps asked for by batches. */
  minGapMs?: number;
  /** A step still running after this long is logged (again at every multiple); it is not cut. */
  slowMs?: number;
  /** A watermark that has not moved for this long while something waits beyond it is logged
   *  with what it waits for (pipeline_status.waiting_for), again at every multiple. */
  stallMs?: number;
  /** Another connection to the warehouse, to see what a slow step or a still watermark waits for. */
  inspect?: Pool;
}

/** What the step's session is doing, and who holds what it waits for (pg_stat_activity). */
export async function describeSession(pool: Pool, pid: number): Promise<Record<string, unknown>> {
  const { rows } = await pool.query(
    `SELECT s.state, s.wait_event_type, s.wait_event,
            (SELECT coalesce(json_agg(json_build_object('pid', b.pid, 'application', b.application_name, 'state', b.state,
                                                        'transactionSeconds', round(extract(epoch FROM now() - b.xact_start)::numeric, 1),
                                                        'query', left(b.query, 200))), '[]')
               FROM pg_stat_activity AS b WHERE b.pid = ANY (pg_blocking_pids(s.pid))) AS blocked_by
       FROM pg_stat_activity AS s WHERE s.pid = $1`, [pid]);
  if (!rows.length) return { pid, session: 'gone' };
  const r = rows[0];
  return { pid, state: r.state, waitEvent: r.wait_event_type ? `${r.wait_event_type}:${r.wait_event}` : null, blockedBy: r.blocked_by };
}

/** Starts the periodic step; null (and a warning) when the warehouse lacks migration 0005. The
 *  step has `pool` to itself (a pool of one): a long catch-up step must not hold up the reads
 *  of positions or captured tables. */
export async function startConsistency(pool: Pool, metrics: Metrics, log: Logger, opts: StepOptions = {}): Promise<ConsistencySteps | null> {
  const { intervalMs = 1000, minGapMs = 5, slowMs = 30_000, stallMs = 60_000, inspect } = opts;
  const found = (await pool.query(
    "SELECT to_regprocedure('cdc.advance_consistency()') IS NOT NULL AS step, to_regprocedure('cdc.advance_consistency(boolean)') IS NOT NULL AS counting")).rows[0];
  if (!found.step) {
    log.warn('warehouse has no cdc.advance_consistency() (migration 0005): no consistency watermark');
    return null;
  }
  if (!found.counting) log.warn('warehouse lacks migration 0010 (make up applies it): every watermark step counts the pending transactions');
  const counting = found.counting as boolean;
  const through = new client.Gauge({ name: 'cdc_consistent_through_seconds', help: 'Source commit time (Unix seconds) through which every transaction is in the warehouse whole', labelNames: ['source'], registers: [metrics.registry] });
  const lag = new client.Gauge({ name: 'cdc_consistency_lag_seconds', help: 'Now minus cdc_consistent_through_seconds', labelNames: ['source'], registers: [metrics.registry] });
  const pending = new client.Gauge({ name: 'cdc_transactions_pending', help: 'Recorded source transactions beyond the watermark (counted up to 10,000, at most once a second)', labelNames: ['source'], registers: [metrics.registry] });
  const stepSeconds = new client.Histogram({ name: 'cdc_consistency_step_seconds', help: 'Duration of one watermark step (advance and publish)', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30], registers: [metrics.registry] });
  // The step's backend, for the slow-step report.
  let stepPid: number | undefined;
  let slowReported = false;
  const reportSlow = async (): Promise<void> => {
    if (stopped) return; // shutting down: the inspecting pool may be closed
    const seconds = Math.round((Date.now() - lastStart) / 1000);
    let session: Record<string, unknown> = stepPid === undefined ? { session: 'waiting for a warehouse connection' } : { pid: stepPid };
    if (inspect && stepPid !== undefined) session = await describeSession(inspect, stepPid).catch((err) => ({ pid: stepPid, inspectError: err }));
    if (!busy) return; // it ended meanwhile
    slowReported = true;
    log.warn('consistency watermark step still running', { seconds, ...session });
  };
  // A watermark standing still is normal when nothing waits (an idle source); when something does,
  // the warehouse already knows what (pipeline_status.waiting_for): say it in the log, where an
  // operator looks first. Seen: END records held back upstream while their changes had landed.
  const still = new Map<string, { lsn: bigint | null; since: number; checked: number; warned: boolean }>();
  const watchStill = (w: Watermark): void => {
    const now = Date.now();
    const s = still.get(w.source);
    if (!s || s.lsn !== w.consistentLsn) {
      if (s?.warned) log.info('consistency watermark no longer stands still', { source: w.source, stoodSeconds: Math.round((now - s.since) / 1000) });
      still.set(w.source, { lsn: w.consistentLsn, since: now, checked: now, warned: false });
      return;
    }
    if (!inspect || now - s.checked < stallMs) return;
    s.checked = now;
    inspect.query('SELECT waiting_for FROM public.pipeline_status WHERE source = $1', [w.source]).then(({ rows }) => {
      const waitingFor = rows[0]?.waiting_for as string | null | undefined;
      if (!waitingFor || stopped || still.get(w.source) !== s) return;
      s.warned = true;
      log.warn('consistency watermark stands still', { source: w.source, seconds: Math.round((Date.now() - s.since) / 1000), waitingFor });
    }, (err) => log.debug('cannot read pipeline_status', { error: err }));
  };
  let failing = false;
  let busy = false;
  let again = false;
  let lastStart = 0;
  let lastMs = 0;
  // pending is counted at most once per intervalMs: under load steps follow each other every few ms.
  let lastCounted = 0;
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
    slowReported = false;
    stepPid = undefined;
    const slow = setInterval(() => void reportSlow(), slowMs);
    slow.unref();
    const end = stepSeconds.startTimer();
    try {
      // (A timer's interval measured by Date.now() can come out a few ms short.)
      const count = lastStart - lastCounted >= intervalMs - 50;
      if (count) lastCounted = lastStart;
      for (const w of await advanceConsistency(pool, (pid) => { stepPid = pid; }, counting ? count : null)) {
        pending.set({ source: w.source }, w.pending);
        watchStill(w);
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
      clearInterval(slow);
      end();
      lastMs = Date.now() - lastStart;
      busy = false;
      if (slowReported) log.info('consistency watermark step ended', { seconds: Math.round(lastMs / 100) / 10 });
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
