// The goals of issue 14, computed from one run's own figures (results.json `goals`): each goal
// says what was measured, whether it was met, and when not, which component limits it. Pure:
// everything comes from the Results object, so a results.json can be re-judged later.
import type { FixedRun, Results, SystemRun } from './report';
import type { SystemKey } from './systems';

export interface Goal {
  goal: string;
  target: string;
  measured: string;
  met: boolean;
  /** When not met: the component that limits it (null when met, or when nothing was measured). */
  limit: string | null;
}

/** The JDBC sinks: ours is compared against the better of the default and the tuned one. */
export const SINKS: SystemKey[] = ['jdbc', 'jdbcTuned'];
export const FRESHNESS_RATES = [500, 1000, 2000];
export const FRESHNESS_RATIO = 0.8;
export const P50_AT_1000_MS = 25;
export const DRAIN_TARGET = 50_000;
export const DRAIN_VS_NATIVE = 0.5;
export const E2E_RATE = 10_000;
export const E2E_P99_MS = 1000;
export const SOURCE_TPS_SHARE = 0.95;

/** results.json writes Infinity as the string "Infinity" (JSON has no Infinity). */
export const num = (v: unknown): number => (v === 'Infinity' ? Infinity : typeof v === 'number' ? v : NaN);

export function fmtMs(v: number): string {
  if (v === Infinity) return 'never (fell behind)';
  if (!Number.isFinite(v)) return '–';
  if (v < 10) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

const n0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');

/** A system's run, if it ran (not skipped). */
export function ran(f: FixedRun | undefined, k: SystemKey): SystemRun | null {
  const s = f?.systems[k];
  return s && !s.skipped ? s : null;
}

/**
 * The better (lower) of the sinks' values of one metric at one run: a sink that fell behind
 * counts as Infinity; a sink that did not run does not count. Null when no sink ran.
 */
export function bestSink(f: FixedRun, metric: 'p50' | 'p99'): { key: SystemKey; value: number } | null {
  let best: { key: SystemKey; value: number } | null = null;
  for (const k of SINKS) {
    const s = ran(f, k);
    if (!s) continue;
    const v = num(s[metric]);
    if (Number.isNaN(v)) continue;
    if (!best || v < best.value) best = { key: k, value: v };
  }
  return best;
}

/**
 * ours ≤ ratio × peer, with "never" (Infinity) handled: ours never arriving fails; a peer that
 * never caught up is beaten by any ours that did.
 */
export function withinRatio(ours: number, peer: number, ratio: number): boolean {
  if (Number.isNaN(ours) || Number.isNaN(peer)) return false;
  if (ours === Infinity) return false;
  if (peer === Infinity) return true;
  return ours <= ratio * peer;
}

/** ours ≥ share × peer (throughput-like figures, higher is better). */
export function atLeastShare(ours: number, peer: number, share: number): boolean {
  if (!Number.isFinite(ours) || Number.isNaN(peer)) return false;
  if (peer === Infinity) return false;
  return ours >= share * peer;
}

/** The fixed run at exactly this rate (the goals name rates; a run at another rate does not stand in). */
export function runAt(r: Results, rate: number): FixedRun | undefined {
  return r.fixed.find((f) => num(f.rate) === rate);
}

/** Which leg of ours' freshness keeps a percentile above `target`: Debezium's, or the processor's. */
export function freshnessLimit(f: FixedRun, metric: 'p50' | 'p99', target: number): string {
  const sp = f.oursSplit;
  if (!sp) return 'unknown (no split of ours\' freshness was measured)';
  const cap = sp.capture[metric];
  const proc = sp.processor[metric];
  if (cap >= target) {
    return `Debezium → Kafka: that leg alone is ${fmtMs(cap)} at ${metric} (≥ the target ${fmtMs(target)}; the sinks share it), the processor adds ${fmtMs(proc)}`;
  }
  return `processor: its leg is ${fmtMs(proc)} at ${metric} beside Debezium → Kafka ${fmtMs(cap)} (target ${fmtMs(target)})`;
}

function freshnessGoals(r: Results): Goal[] {
  const out: Goal[] = [];
  for (const rate of FRESHNESS_RATES) {
    const f = runAt(r, rate);
    for (const metric of ['p50', 'p99'] as const) {
      const goal = `freshness ${metric} at ${n0(rate)} changes/s ≤ ${FRESHNESS_RATIO}× the better JDBC sink's`;
      const target = `≤ ${FRESHNESS_RATIO}× min(default sink, tuned sink) ${metric}`;
      const o = ran(f, 'ours');
      const best = f ? bestSink(f, metric) : null;
      if (!f || !o || !best) {
        out.push({ goal, target, measured: !f ? `no run at ${n0(rate)}/s` : !o ? 'ours did not run' : 'no JDBC sink ran', met: false, limit: null });
        continue;
      }
      const ours = num(o[metric]);
      const met = withinRatio(ours, best.value, FRESHNESS_RATIO);
      const ratio = Number.isFinite(ours) && Number.isFinite(best.value) && best.value > 0 ? ` = ${(ours / best.value).toFixed(2)}×` : '';
      out.push({
        goal,
        target,
        measured: `ours ${fmtMs(ours)} vs ${best.key === 'jdbc' ? 'default' : 'tuned'} sink ${fmtMs(best.value)}${ratio}`,
        met,
        limit: met ? null : freshnessLimit(f, metric, Number.isFinite(best.value) ? FRESHNESS_RATIO * best.value : ours),
      });
    }
  }
  const f = runAt(r, 1000);
  const o = ran(f, 'ours');
  const p50 = o ? num(o.p50) : NaN;
  const met = p50 <= P50_AT_1000_MS;
  out.push({
    goal: `freshness p50 at 1,000 changes/s ≤ ${P50_AT_1000_MS} ms`,
    target: `≤ ${P50_AT_1000_MS} ms`,
    measured: o ? `${fmtMs(p50)} (Debezium → Kafka ${fmtMs(num(f!.oursSplit?.capture.p50))} + processor ${fmtMs(num(f!.oursSplit?.processor.p50))})` : 'no run at 1,000/s',
    met,
    limit: met || !f || !o ? null : freshnessLimit(f, 'p50', P50_AT_1000_MS),
  });
  return out;
}

/** What bounds our drain: the Node.js process, its warehouse backends, or the machine. */
export function drainLimit(r: Results): string {
  const d = r.drain.systems.ours;
  if (!d) return 'unknown';
  const client = num(d.parts.client);
  const backends = num(d.parts.backends);
  const cores = num(d.parts.clientCores);
  const busy = num(d.machineBusy);
  const machine = busy >= 0.9 ? `; the machine was ${Math.round(busy * 100)}% busy over all cores` : '';
  // A processor that got well under a core while the machine was full was starved, not saturated.
  if (busy >= 0.9 && Number.isFinite(cores) && cores < 0.8) {
    return `the machine: ${Math.round(busy * 100)}% busy over all cores while the processor got ${Math.round(cores * 100)}% of one (${n0(num(d.clientUsPerChange))} µs CPU per change in Node.js, ${n0(num(d.backendsUsPerChange))} µs in its backends)`;
  }
  if (client >= backends) {
    return `processor (the Node.js process: ${n0(num(d.clientUsPerChange))} µs CPU per change, ${Number.isFinite(cores) ? `${Math.round(cores * 100)}% of a core` : 'one JavaScript thread'})${machine}`;
  }
  return `warehouse backends (${n0(num(d.backendsUsPerChange))} µs CPU per change in PostgreSQL vs ${n0(num(d.clientUsPerChange))} µs in Node.js)${machine}`;
}

function drainGoals(r: Results): Goal[] {
  const o = r.drain.systems.ours;
  const nat = r.drain.systems.native;
  const rate = num(o?.rate);
  const cpu = o ? ` (CPU per change: processor ${n0(num(o.clientUsPerChange))} µs + its warehouse backends ${n0(num(o.backendsUsPerChange))} µs)` : '';
  const metAbs = Number.isFinite(rate) && rate >= DRAIN_TARGET && Boolean(o?.complete);
  const natRate = num(nat?.rate);
  const metRel = atLeastShare(rate, natRate, DRAIN_VS_NATIVE) && Boolean(o?.complete);
  return [
    {
      goal: `drain ≥ ${n0(DRAIN_TARGET)} changes/s into orders_fact + orders_latest`,
      target: `≥ ${n0(DRAIN_TARGET)} changes/s`,
      measured: o ? `${n0(rate)} changes/s${o.complete ? '' : ' (did not finish within the time limit)'}${cpu}` : 'ours did not drain',
      met: metAbs,
      limit: metAbs || !o ? null : drainLimit(r),
    },
    {
      goal: `drain ≥ ${DRAIN_VS_NATIVE}× native logical replication's, same run`,
      target: `≥ ${DRAIN_VS_NATIVE}× native`,
      measured: o && nat ? `${n0(rate)} vs native ${n0(natRate)} changes/s = ${Number.isFinite(rate / natRate) ? (rate / natRate).toFixed(2) : '–'}×` : 'not both drained',
      met: metRel,
      limit: metRel || !o ? null : drainLimit(r),
    },
  ];
}

/**
 * What the load generator can offer: measured alone against the source (capture stopped) when
 * the run did, else the preload's rate (no consumer running, Debezium capturing).
 */
export function generatorCeiling(r: Results): number {
  const alone = r.sourceCost?.generatorAlone;
  if (alone) return num(alone.rate);
  return r.generator ? num(r.generator.rate) : NaN;
}

function e2eGoal(r: Results): Goal {
  const goal = `end to end ≥ ${n0(E2E_RATE)} changes/s sustained live with p99 ≤ ${fmtMs(E2E_P99_MS)}`;
  const target = `≥ ${n0(E2E_RATE)} changes/s achieved, ours kept up, p99 ≤ ${fmtMs(E2E_P99_MS)}`;
  const e = r.e2e;
  const o = ran(e ?? undefined, 'ours');
  if (!e || !o) return { goal, target, measured: 'no end-to-end run', met: false, limit: null };
  const cap = generatorCeiling(r);
  const offered = num(e.rate);
  const achieved = num(e.achievedRate);
  const p99 = num(o.p99);
  const kept = Boolean(o.keptUp) && num(o.catchupSec) <= Math.max(2, 0.05 * e.durationSec);
  const met = achieved >= E2E_RATE && kept && p99 <= E2E_P99_MS;
  const measured =
    `offered ${offered === Infinity ? 'as fast as possible' : `${n0(offered)}/s`}, achieved ${n0(achieved)} changes/s (${e.txSize} per transaction)` +
    `${Number.isFinite(cap) ? `; the generator reaches ${n0(cap)}/s ${r.sourceCost?.generatorAlone ? 'alone against the source' : 'in the preload (no consumer running)'}` : ''}; ours ${kept ? 'kept up' : 'fell behind'}, p50 ${fmtMs(num(o.p50))}, p99 ${fmtMs(p99)}`;
  let limit: string | null = null;
  if (!met) {
    if (Number.isFinite(cap) && cap < E2E_RATE) limit = `load generator + source: they offer at most ${n0(cap)} changes/s (not the pipeline)`;
    else if (achieved < 0.95 * Math.min(offered, E2E_RATE)) limit = `the source under the whole pipeline's load: ${n0(achieved)} of ${n0(offered)} changes/s offered were committed`;
    else if (e.oursSplit) {
      const cap99 = e.oursSplit.capture.p99;
      const proc99 = e.oursSplit.processor.p99;
      limit = proc99 >= cap99
        ? `processor: its leg p99 ${fmtMs(proc99)} (Debezium → Kafka ${fmtMs(cap99)})`
        : `Debezium → Kafka: its leg p99 ${fmtMs(cap99)} (processor ${fmtMs(proc99)})`;
    } else limit = kept ? 'unknown (no split)' : 'processor (fell behind)';
  }
  return { goal, target, measured, met, limit };
}

function sourceGoals(r: Results): Goal[] {
  const sc = r.sourceCost;
  const base = sc?.runs.captureStopped ?? null;
  const cases: Array<[string, 'captureRunning' | 'processorStopped']> = [
    ['capture running, pipeline keeping up', 'captureRunning'],
    ['capture running, processor stopped', 'processorStopped'],
  ];
  return cases.map(([what, k]) => {
    const goal = `pgbench TPS with ${what} ≥ ${Math.round(SOURCE_TPS_SHARE * 100)}% of the TPS with capture stopped`;
    const target = `≥ ${Math.round(SOURCE_TPS_SHARE * 100)}%`;
    const run = sc?.runs[k];
    if (!sc || !base || !run) return { goal, target, measured: 'not measured', met: false, limit: null };
    const share = run.tps / base.tps;
    const met = Number.isFinite(share) && share >= SOURCE_TPS_SHARE;
    const wal = k === 'processorStopped' && sc.wal
      ? `; WAL held by the slot over ${n0(sc.wal.holdSec)} s with the processor stopped: at most ${fmtBytes(sc.wal.maxRetainedBytes)} (restart_lsn), ${fmtBytes(sc.wal.maxUnconfirmedBytes)} unconfirmed`
      : '';
    return {
      goal,
      target,
      measured: `${n0(run.tps)} vs ${n0(base.tps)} TPS = ${Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : '–'}${wal}`,
      met,
      limit: met ? null : sourceLimit(base.machineBusy, run.machineBusy),
    };
  });
}

/** Capture's cost, unless the machine had no core to spare (then the comparison says little). */
export function sourceLimit(...busy: Array<number | undefined>): string {
  const worst = Math.max(...busy.map((b) => b ?? 0));
  if (worst >= 0.95) {
    return `CPU shared with the pipeline: the machine was ${Math.round(worst * 100)}% busy, and Debezium (Kafka Connect), Kafka, the processor and the warehouse run on the source's cores here; ` +
      'with the source on a host of its own only the walsender\'s decoding would remain';
  }
  return 'capture on the source: the walsender decoding WAL for Debezium, and the pipeline on the same cores';
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return '–';
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(0)} kB`;
  return `${(b / 2 ** 20).toFixed(1)} MB`;
}

export const WHOLE_TX_COST = 0.1;

/**
 * Whole-transaction apply (ours, the default) against the same processor merging per batch
 * (oursEvent, APPLY_MODE=event), in the same run: freshness p50 and p99 at each fixed rate, and
 * the drain rate, each within 10%. Freshness differences of a few milliseconds are measurement
 * noise at this scale, so a p50 within 5 ms also counts as met (said so in `measured`).
 */
export function wholeTransactionGoals(r: Results): Goal[] {
  const out: Goal[] = [];
  const target = `≤ ${Math.round(WHOLE_TX_COST * 100)}% above APPLY_MODE=event`;
  const pairs: Array<{ goal: string; ours: number; event: number; higherIsBetter: boolean; slackMs?: number }> = [];
  for (const f of r.fixed) {
    const o = ran(f, 'ours');
    const e = ran(f, 'oursEvent');
    if (!o || !e) continue;
    for (const metric of ['p50', 'p99'] as const) {
      pairs.push({ goal: `whole-transaction apply: freshness ${metric} at ${n0(num(f.rate))} changes/s`, ours: num(o[metric]), event: num(e[metric]), higherIsBetter: false, slackMs: 5 });
    }
  }
  const d = r.drain.systems.ours;
  const de = r.drain.systems.oursEvent;
  if (d && de) pairs.push({ goal: 'whole-transaction apply: drain changes/s', ours: num(d.rate), event: num(de.rate), higherIsBetter: true });
  if (!pairs.length) {
    return [{ goal: 'whole-transaction apply costs ≤ 10% of freshness and drain', target, measured: 'APPLY_MODE=event did not run (BENCH_EVENT_MODE=0)', met: false, limit: null }];
  }
  for (const p of pairs) {
    const cost = p.higherIsBetter ? 1 - p.ours / p.event : p.ours / p.event - 1;
    const within = Number.isFinite(cost) && cost <= WHOLE_TX_COST;
    const slack = !within && p.slackMs !== undefined && Number.isFinite(p.ours) && p.ours - p.event <= p.slackMs;
    const fmt = (v: number) => (p.higherIsBetter ? `${n0(v)}/s` : fmtMs(v));
    out.push({
      goal: p.goal,
      target,
      measured: `${fmt(p.ours)} vs ${fmt(p.event)} per batch: ${Number.isFinite(cost) ? `${cost >= 0 ? '+' : ''}${Math.round(cost * 100)}% cost` : '–'}${slack ? ` (within ${p.slackMs} ms)` : ''}`,
      met: within || slack,
      limit: within || slack ? null : 'the watermark step (cdc.advance_consistency: whole-transaction check and publish_range merging into _latest)',
    });
  }
  return out;
}

export function computeGoals(r: Results): Goal[] {
  return [...freshnessGoals(r), ...drainGoals(r), e2eGoal(r), ...sourceGoals(r), ...wholeTransactionGoals(r)];
}
