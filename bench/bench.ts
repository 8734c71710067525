// `make bench`: freshness and throughput of our processor side by side with the Debezium JDBC
// sink and native PostgreSQL logical replication, on the same machine, in one run.
// Run through bench/run.sh (which installs the JDBC sink plugin and pauses the stack's own
// processor); this driver sets the four systems up, drives the load, measures, and writes
// docs/benchmarks/results.json and RESULTS.md. See bench/README.md.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Client } from 'pg';
import { runLoad, type LoadSummary } from '../seed/lib/workload';
import { MachineLoad, Sampler, threadsNamed, waitQuiet, type Group } from './lib/proc';
import { freshnessSplit } from './lib/capture';
import { computeGoals } from './lib/goals';
import type { SourceCost } from './lib/pgbench';
import { summarizeProfile } from './lib/profile';
import { renderResults, renderTable, type Results, type FixedRun, type SystemRun, type DrainRun } from './lib/report';
import { measureSourceCost, restoreSource } from './lib/sourcecost';
import { JdbcSink, Native, Ours, TOPIC, TUNED_SINK, endOffsets, kafkaAdmin, type Env, type System, type SystemKey, type Window } from './lib/systems';
import { connect, log, quantile, waitFor } from './lib/util';

const REPO = path.resolve(__dirname, fs.existsSync(path.resolve(__dirname, '../package.json')) ? '..' : '../..');

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run through make bench (or bash infra/with-env.sh bash bench/run.sh)`);
  return v;
}

function numEnv(name: string, dflt: number, min = Number.MIN_VALUE): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min) throw new Error(`${name} must be a number ≥ ${min === Number.MIN_VALUE ? '0 (not 0)' : min}, got '${raw}'`);
  return v;
}

/** The sinks' CPU is the task threads while Debezium also runs; alone (the drain) the whole Connect JVM. */
const isSink = (k: SystemKey) => k === 'jdbc' || k === 'jdbcTuned';

function pidFile(dataDir: string, name: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'run', `${name}.pid`), 'utf8').trim());
    return pid > 0 && fs.existsSync(`/proc/${pid}`) ? pid : null;
  } catch {
    return null;
  }
}

/** All processes whose parent is `ppid` (a PostgreSQL cluster: the postmaster's children). */
function childrenOf(ppid: number | null): Array<{ pid: number; rss: 'anon' }> {
  if (!ppid) return [];
  const out: Array<{ pid: number; rss: 'anon' }> = [{ pid: ppid, rss: 'anon' }];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push({ pid: Number(d), rss: 'anon' });
    } catch {
      // gone
    }
  }
  return out;
}

function pomProp(file: string, prop: string): string {
  const m = new RegExp(`<${prop.replace(/\./g, '\\.')}>([^<]+)</`).exec(fs.readFileSync(path.join(REPO, file), 'utf8'));
  return m ? m[1] : '?';
}

/** The code measured: the repository's commit, marked when the work tree has changes. */
function gitCommit(): string {
  try {
    const { execFileSync } = require('child_process') as typeof import('child_process');
    const head = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no', 'processor', 'infra', 'connectors'], { encoding: 'utf8' }).trim();
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return '?';
  }
}

async function sourceNow(c: Client): Promise<Date> {
  return (await c.query('SELECT clock_timestamp() AS t')).rows[0].t;
}

const monoOffsetUs = () => Number(process.hrtime.bigint() / 1000n) - Date.now() * 1000;

function stats(ms: Float64Array, expected: number): Pick<SystemRun, 'arrived' | 'expected' | 'p50' | 'p95' | 'p99' | 'max' | 'mean'> {
  // Row versions that never arrived (a system behind when the wait ended) count as infinitely late.
  const all = new Float64Array(Math.max(expected, ms.length)).fill(Infinity);
  all.set(ms);
  let sum = 0;
  for (const v of ms) sum += v;
  return {
    arrived: ms.length,
    expected,
    p50: quantile(all, 0.5),
    p95: quantile(all, 0.95),
    p99: quantile(all, 0.99),
    max: ms.length < expected ? Infinity : ms.length ? ms[ms.length - 1] : NaN,
    mean: ms.length ? sum / ms.length : NaN,
  };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const rates = (process.env.BENCH_RATES ?? '500,1000,2000,5000').split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
  const durationSec = numEnv('BENCH_DURATION', 60);
  const preload = Math.round(numEnv('BENCH_PRELOAD', 300_000));
  const preloadTxSize = Math.round(numEnv('BENCH_PRELOAD_TX_SIZE', 10));
  const catchupSec = numEnv('BENCH_CATCHUP_TIMEOUT', 60);
  const drainSec = numEnv('BENCH_DRAIN_TIMEOUT', 120);
  const e2eSec = process.env.BENCH_E2E_DURATION === '0' ? 0 : numEnv('BENCH_E2E_DURATION', 30);
  const e2eTxSize = Math.round(numEnv('BENCH_E2E_TX_SIZE', 10));
  const e2eRate = process.env.BENCH_E2E_RATE === 'max' ? Infinity : numEnv('BENCH_E2E_RATE', 10_000);
  // The load generator's connections and statements in flight per connection (preload and end to end).
  const connections = Math.round(numEnv('BENCH_LOAD_CONNECTIONS', 8));
  const pipeline = Math.round(numEnv('BENCH_LOAD_PIPELINE', 8));
  const pgbench = {
    bin: process.env.PGBENCH || 'pgbench',
    scale: Math.round(numEnv('BENCH_PGBENCH_SCALE', 10)),
    clients: Math.round(numEnv('BENCH_PGBENCH_CLIENTS', 4)),
    threads: Math.round(numEnv('BENCH_PGBENCH_THREADS', 2)),
    durationSec: Math.round(numEnv('BENCH_PGBENCH_DURATION', 20, 0)),
    captureRate: numEnv('BENCH_PGBENCH_LOAD_RATE', 1000, 0),
    holdSec: numEnv('BENCH_WAL_HOLD', 30, 0),
  };
  const withTuned = process.env.BENCH_TUNED_SINK !== '0';
  const offerSec = numEnv('BENCH_OFFER_DURATION', 10, 0);
  const warmupSec = numEnv('BENCH_WARMUP_DURATION', 20);
  // Before each measured phase: the machine's busy share (all cores, 5 s) must fall to this, or
  // the wait ends (longer before the first phase, on a stack perhaps just started).
  const quietBusy = numEnv('BENCH_QUIET_BUSY', 0.4);
  const quietFirstSec = numEnv('BENCH_QUIET_TIMEOUT', 120, 0);
  const outDir = path.resolve(REPO, process.env.BENCH_OUT_DIR ?? 'docs/benchmarks');
  const dataDir = need('DATA_DIR');
  const workDir = path.join(dataDir, 'bench');
  fs.mkdirSync(workDir, { recursive: true });
  fs.mkdirSync(outDir, { recursive: true });

  const env: Env = {
    repo: REPO,
    sourceAdminUrl: need('SOURCE_ADMIN_URL'),
    warehouseAdminUrl: need('WAREHOUSE_ADMIN_URL'),
    processorUrl: need('WAREHOUSE_DATABASE_URL'),
    brokers: need('KAFKA_BOOTSTRAP_SERVERS').split(','),
    connectUrl: need('CONNECT_URL'),
    registryUrl: need('SCHEMA_REGISTRY_URL'),
    apicurioUrl: need('APICURIO_REGISTRY_URL'),
    dataDir,
    connectPid: pidFile(dataDir, 'connect'),
  };
  const sourceUrl = need('SOURCE_DATABASE_URL');
  const loadBefore = os.loadavg();
  log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  log(`plan: fixed rates ${rates.join(', ')} changes/s × ${durationSec} s (all systems at once), then a preload of ${preload.toLocaleString('en-US')} changes drained by each system alone` +
    `${e2eSec > 0 ? `, then ${e2eSec} s end to end at ${e2eRate === Infinity ? "the source's maximum" : `${e2eRate.toLocaleString('en-US')} changes/s`}` : ''}` +
    `${pgbench.durationSec > 0 ? `, then pgbench on the source (3 × ${pgbench.durationSec} s, processor stopped ${Math.max(pgbench.holdSec, pgbench.durationSec)} s)` : ''}`);

  const whAdmin = await connect(env.warehouseAdminUrl, 'cdc-bench-admin');
  const srcAdmin = await connect(env.sourceAdminUrl, 'cdc-bench-admin');
  const kafka = kafkaAdmin(env.brokers);
  await kafka.connect();

  const ours = new Ours(env, whAdmin, kafka);
  // The same processor merging per batch (APPLY_MODE=event): what whole-transaction apply costs.
  const withEventMode = process.env.BENCH_EVENT_MODE !== '0';
  const oursEvent = new Ours(env, whAdmin, kafka, 'event');
  const jdbc = new JdbcSink(env, whAdmin, kafka);
  const tuned = new JdbcSink(env, whAdmin, kafka, TUNED_SINK);
  const native = new Native(env, whAdmin, srcAdmin);
  const systems: System[] = [ours, ...(withEventMode ? [oursEvent] : []), jdbc, ...(withTuned ? [tuned] : []), native];
  const paused = new Set<SystemKey>();

  const cleanup = async () => {
    await restoreSource(srcAdmin);
    for (const s of systems) await s.teardown().catch((e) => log(`WARNING: ${s.label} teardown: ${(e as Error).message}`));
  };
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: removing the benchmark connector, subscription and processor');
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // ------------------------------------------------------------ setup
    for (const s of systems) {
      const t = Date.now();
      await s.setup();
      log(`${s.label}: set up (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    }
    // Warm-up: the processor and the sink create their tables; JITs, caches and schemas warm up.
    // Long enough for the JITs of Connect's new sink tasks: a first phase right after a short
    // warm-up measured Debezium → Kafka at seconds, for every system.
    log(`warm-up: ${warmupSec} s at 500 changes/s`);
    await runLoad({ connectionString: sourceUrl, rate: 500, durationSec: warmupSec, applicationName: 'cdc-bench-load' });
    for (const s of systems) await s.instrument();
    const warm = await fixedLoad(sourceUrl, srcAdmin, 500, 3);
    for (const s of systems) {
      const ok = await waitFor(async () => {
        await s.check?.();
        return (await s.count(warm.window)) >= warm.expected;
      }, 120_000, 500);
      if (!ok) throw new Error(`${s.label} did not load the warm-up changes within 120 s`);
    }
    log('warm-up done: all systems load changes and record arrivals');

    // ------------------------------------------------------------ sampling
    const groups: Group[] = [...systems.flatMap((s) => s.groups())];
    const connectPid = env.connectPid;
    const kafkaPid = pidFile(dataDir, 'kafka');
    groups.push(
      { name: 'connect', members: () => (connectPid ? [{ pid: connectPid, rss: 'all' }] : []) },
      {
        // Debezium's streaming thread (debezium-postgresconnector-…), the task thread that converts
        // and hands records over, and the producers' network threads.
        name: 'debezium',
        members: () =>
          connectPid ? ['task-thread-orders-source', 'debezium-postgres', 'kafka-producer-network'].flatMap((t) => threadsNamed(connectPid, t)) : [],
      },
      { name: 'kafka', members: () => (kafkaPid ? [{ pid: kafkaPid, rss: 'all' }] : []) },
      { name: 'source-pg', members: () => childrenOf(pidFile(dataDir, 'source-pg')) },
      { name: 'warehouse-pg', members: () => childrenOf(pidFile(dataDir, 'warehouse-pg')) },
      {
        // The bench's own sessions in the warehouse (counting arrivals, sampling): not the systems'.
        name: 'bench-queries',
        members: async () =>
          (await whAdmin.query("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'cdc-bench%'")).rows.map((r) => ({ pid: r.pid as number, rss: 'anon' as const })),
      },
      { name: 'bench-driver', members: () => [{ pid: process.pid, rss: 'all' }] },
    );
    const sampler = new Sampler(groups, 250, 1000);
    await sampler.start();
    const machine = new MachineLoad();
    const settled: { first?: { busy: number; waitedSec: number } } = {};
    /** Waits for a quiet machine before a measured phase, and says how quiet it got. */
    const quiet = async (what: string): Promise<{ busy: number; waitedSec: number }> => {
      const q = await waitQuiet({ maxBusy: quietBusy, windowSec: 5, timeoutSec: settled.first ? Math.min(30, quietFirstSec) : quietFirstSec });
      settled.first ??= q;
      const pct = Math.round(q.busy * 100);
      if (q.busy <= quietBusy) log(`machine quiet before ${what}: ${pct}% busy over 5 s (waited ${q.waitedSec.toFixed(0)} s)`);
      else log(`WARNING: machine still ${pct}% busy before ${what} after ${q.waitedSec.toFixed(0)} s; measuring anyway`);
      return q;
    };

    // ------------------------------------------------------------ fixed rates
    // One load, every active system loading it at once; then a bounded wait until each has every row version.
    const timedRun = async (rate: number, seconds: number, extra: { txSize?: number; connections?: number; pipeline?: number } = {}): Promise<FixedRun> => {
      const active = systems.filter((s) => !paused.has(s.key));
      const quietBefore = await quiet(`${rate === Infinity ? 'the end-to-end run' : `${rate.toLocaleString('en-US')} changes/s`}`);
      log(`${rate === Infinity ? 'as fast as the source takes it' : `rate ${rate.toLocaleString('en-US')} changes/s`}` +
        `${extra.txSize ? ` (${extra.txSize} per transaction)` : ''} for ${seconds} s: ${active.map((s) => s.key).join(', ')} loading`);
      machine.take();
      const start = Date.now();
      sampler.mark(`fixed-${rate}`);
      const run = await fixedLoad(sourceUrl, srcAdmin, rate, seconds, extra);
      const loadEnd = Date.now();
      const busy = machine.take();
      log(`  load: ${run.summary.total.toLocaleString('en-US')} changes at ${Math.round(run.summary.averageRate).toLocaleString('en-US')}/s` +
        `${run.summary.reachedRate ? '' : ' (rate NOT reached)'}; machine ${Math.round(busy * 100)}% busy; waiting for the systems to catch up`);
      const caughtUp = new Map<SystemKey, number | null>();
      await Promise.all(
        active.map(async (s) => {
          const ok = await waitFor(async () => (await s.count(run.window)) >= run.expected, catchupSec * 1000, 500);
          caughtUp.set(s.key, ok ? Date.now() : null);
        }),
      );
      const end = Date.now();
      const result: FixedRun = {
        rate,
        durationSec: seconds,
        txSize: extra.txSize ?? 1,
        achievedRate: run.summary.averageRate,
        reachedRate: run.summary.reachedRate,
        changes: run.summary.total,
        rowVersions: run.expected,
        commitP99Ms: run.summary.latencyMs.p99,
        machineBusy: busy,
        busyBefore: quietBefore.busy,
        systems: {},
        upstreamCpuSec: {
          debezium: sampler.cpuSeconds('debezium', start, end),
          connect: sampler.cpuSeconds('connect', start, end),
          kafka: sampler.cpuSeconds('kafka', start, end),
          sourcePg: sampler.cpuSeconds('source-pg', start, end),
          warehousePg: sampler.cpuSeconds('warehouse-pg', start, end),
          loadGenerator: sampler.cpuSeconds('bench-driver', start, end),
        },
      };
      for (const s of systems) {
        if (!active.includes(s)) {
          result.systems[s.key] = { skipped: sitOut.get(s.key) ?? 'paused' } as SystemRun;
          continue;
        }
        const a = await s.arrivals(run.window);
        const at = caughtUp.get(s.key);
        result.systems[s.key] = {
          ...stats(a.ms, run.expected),
          keptUp: at !== null && at !== undefined,
          catchupSec: at ? (at - loadEnd) / 1000 : null,
          cpuSec: sampler.cpuSeconds(s.key, start, end),
          cpuClientSec: sampler.cpuSeconds(`${s.key}:client`, start, end),
          cpuBackendsSec: sampler.cpuSeconds(`${s.key}:pg`, start, end),
          peakRssMb: sampler.peakRssBytes(isSink(s.key) ? `${s.key}+connect` : s.key, start, end) / 2 ** 20,
        };
      }
      if (active.includes(ours)) {
        result.oursSplit = await freshnessSplit(ours.client, ours.arrivalJoin, env.brokers, run.window).catch((e) => {
          log(`WARNING: could not split ours' freshness: ${(e as Error).message}`);
          return null;
        });
      }
      for (const s of active) {
        const r = result.systems[s.key]!;
        log(`  ${s.key.padEnd(6)} freshness p50 ${fmtMs(r.p50)}, p95 ${fmtMs(r.p95)}, p99 ${fmtMs(r.p99)}; ` +
          `${r.keptUp ? `caught up ${r.catchupSec!.toFixed(1)} s after the load` : `BEHIND: ${r.arrived.toLocaleString('en-US')} of ${r.expected.toLocaleString('en-US')} arrived`}; CPU ${r.cpuSec.toFixed(1)} s`);
      }
      const sp = result.oursSplit;
      if (sp) log(`  ours' p50 = Debezium → Kafka ${fmtMs(sp.capture.p50)} + processor ${fmtMs(sp.processor.p50)} (p99 ${fmtMs(sp.capture.p99)} + ${fmtMs(sp.processor.p99)})`);
      return result;
    };
    const sitOut = new Map<SystemKey, string>();
    const fixed: FixedRun[] = [];
    for (const rate of rates) {
      const result = await timedRun(rate, durationSec);
      fixed.push(result);
      for (const s of systems) {
        const r = result.systems[s.key]!;
        if (!r.skipped && !r.keptUp) {
          // It cannot sustain this rate: leave it out of the higher rates (its backlog would slow the others).
          await s.pause();
          paused.add(s.key);
          sitOut.set(s.key, `fell behind at ${rate.toLocaleString('en-US')}/s`);
          log(`  ${s.label} paused for the remaining fixed-rate runs`);
        }
      }
    }

    // ------------------------------------------------------------ maximum throughput
    log(`maximum throughput: pausing the systems, preloading ${preload.toLocaleString('en-US')} changes (${preloadTxSize} per transaction)`);
    for (const s of systems) {
      if (!paused.has(s.key)) await s.pause();
      paused.add(s.key);
    }
    const startOffsets = await endOffsets(kafka);
    const pre = await fixedLoad(sourceUrl, srcAdmin, Infinity, 600, { maxChanges: preload, txSize: preloadTxSize, connections, pipeline });
    const preloadEnd = Date.now();
    // Debezium turns the preload into change events: every change, plus a tombstone per delete.
    const wantMessages = BigInt(pre.summary.total + pre.summary.committed.delete);
    const sum = (m: Map<number, bigint>) => [...m.values()].reduce((a, b) => a + b, 0n);
    const startSum = sum(startOffsets);
    const published = await waitFor(async () => sum(await endOffsets(kafka)) - startSum >= wantMessages, 300_000, 200);
    const captureEnd = Date.now();
    if (!published) log('WARNING: Debezium did not publish the whole preload within 300 s; draining what is there');
    log(`  preload: ${pre.summary.total.toLocaleString('en-US')} changes in ${pre.summary.elapsedSec.toFixed(1)} s (${Math.round(pre.summary.averageRate).toLocaleString('en-US')}/s);` +
      ` Debezium published the last of them ${((captureEnd - preloadEnd) / 1000).toFixed(1)} s after the preload ended`);
    const drain: DrainRun = {
      changes: pre.summary.total,
      deletes: pre.summary.committed.delete,
      rowVersions: pre.expected,
      txSize: preloadTxSize,
      preloadSec: pre.summary.elapsedSec,
      preloadRate: pre.summary.averageRate,
      captureLagSec: (captureEnd - preloadEnd) / 1000,
      captureRate: pre.summary.total / ((captureEnd - (preloadEnd - pre.summary.elapsedSec * 1000)) / 1000),
      systems: {},
    };
    let profile: Results['profile'] = null;
    const profileDir = path.join(workDir, 'profile');
    fs.rmSync(profileDir, { recursive: true, force: true });
    for (const s of [ours, ...(withEventMode ? [oursEvent] : []), native, jdbc, ...(withTuned ? [tuned] : [])] as System[]) {
      await quiet(`the drain of ${s.label}`); // a drain before finishes its own work meanwhile (vacuum, Connect's GC)
      machine.take();
      const start = Date.now();
      sampler.mark(`drain-${s.key}`);
      await s.resume(s.key === 'ours' ? { profileDir } : {});
      await sampler.refresh();
      const done = await waitFor(async () => (await s.count(pre.window)) >= pre.expected, drainSec * 1000, 250);
      await sampler.refresh(); // a process that started after the last refresh (walsender, apply worker)
      sampler.mark(`drain-${s.key}-end`);
      const end = Date.now();
      const busy = machine.take();
      const a = await s.arrivals(pre.window);
      const n = a.at.length;
      // Steady drain rate: between the arrival of the 10th and the 90th percentile of the row
      // versions (start-up and the first and last batches left out), scaled to all changes.
      const t10 = n ? a.at[Math.floor(0.1 * (n - 1))] : NaN;
      const t90 = n ? a.at[Math.floor(0.9 * (n - 1))] : NaN;
      const frac = n / pre.expected;
      // A drain of a few batches has no steady part (10th to 90th percentile within one batch gave
      // absurd rates): then the whole drain from resume to the last row, start-up included.
      const wholeSec = n ? (a.at[n - 1] - start) / 1000 : NaN;
      const steady = n > 10 && t90 - t10 >= 1000
        ? (0.8 * frac * pre.summary.total) / ((t90 - t10) / 1000)
        : n > 0 && wholeSec > 0 ? (frac * pre.summary.total) / wholeSec : NaN;
      const cpuGroup = isSink(s.key) ? `${s.key}+connect` : s.key;
      const cpu = sampler.cpuSeconds(cpuGroup, start, end);
      const clientCpu = sampler.cpuSeconds(`${cpuGroup}:client`, start, end);
      const backendCpu = sampler.cpuSeconds(`${s.key}:pg`, start, end);
      const drained = Math.max(1, frac * pre.summary.total);
      drain.systems[s.key] = {
        complete: Boolean(done),
        arrived: n,
        rate: steady,
        drainSec: n ? (a.at[n - 1] - start) / 1000 : NaN,
        firstArrivalSec: n ? (a.at[0] - start) / 1000 : NaN,
        cpuSec: cpu,
        cpuUsPerChange: (cpu * 1e6) / drained,
        clientUsPerChange: (clientCpu * 1e6) / drained,
        backendsUsPerChange: (backendCpu * 1e6) / drained,
        peakRssMb: sampler.peakRssBytes(cpuGroup, start, end) / 2 ** 20,
        machineBusy: busy,
        parts: {
          client: clientCpu,
          backends: backendCpu,
          warehousePg: sampler.cpuSeconds('warehouse-pg', start, end),
          benchQueries: sampler.cpuSeconds('bench-queries', start, end),
          sourcePg: sampler.cpuSeconds('source-pg', start, end),
          connect: sampler.cpuSeconds('connect', start, end),
          kafka: sampler.cpuSeconds('kafka', start, end),
          // Cores the client used between its first and last row (start-up left out).
          clientCores: n > 1 ? sampler.cpuSeconds(`${cpuGroup}:client`, a.at[0], a.at[n - 1]) / ((a.at[n - 1] - a.at[0]) / 1000) : NaN,
        },
      };
      const d = drain.systems[s.key]!;
      log(`  ${s.key.padEnd(6)} drained ${done ? 'all' : `${n.toLocaleString('en-US')} of ${pre.expected.toLocaleString('en-US')} row versions (time limit)`} ` +
        `at ${Math.round(steady).toLocaleString('en-US')} changes/s steady; last arrival ${d.drainSec.toFixed(1)} s after resume; CPU ${cpu.toFixed(1)} s (${Math.round(d.cpuUsPerChange)} µs/change)`);
      if (s.key === 'ours') {
        const stats = await ours.batchStats();
        drain.writer = stats ? { ...stats, lanes: ours.lanes() } : null;
        const off = monoOffsetUs();
        const prof = { fromUs: (n ? a.at[0] : start) * 1000 + off, toUs: (n ? a.at[n - 1] : end) * 1000 + off };
        await ours.pause(); // SIGTERM: the profile is written at exit
        const file = path.join(profileDir, 'processor.cpuprofile');
        if (fs.existsSync(file)) {
          // Kept beside RESULTS.md (about 0.5 MB) for Chrome DevTools or speedscope.
          const kept = path.join(outDir, 'processor.cpuprofile');
          fs.copyFileSync(file, kept);
          profile = { file: path.relative(outDir, kept), ...summarizeProfile(file, prof.fromUs, prof.toUs) };
          log(`  processor profile: ${Math.round(profile.js * 100)}% JavaScript, ${Math.round(profile.gc * 100)}% GC, ${Math.round(profile.idle * 100)}% idle over the drain (${file})`);
        } else {
          log('WARNING: the processor wrote no CPU profile');
        }
      } else {
        await s.pause();
      }
    }
    // ------------------------------------------------------------ end to end
    // Live, the whole chain at BENCH_E2E_RATE (several changes per transaction, several
    // connections: autocommit tops out lower); the preload showed what the generator offers
    // against the source with no consumer running. The JDBC sinks sit this one out (their drain
    // shows them far below this rate; their backlog would take CPU from the others).
    let e2e: FixedRun | null = null;
    const generator = { rate: pre.summary.averageRate, txSize: preloadTxSize, connections, pipeline };
    if (e2eSec > 0) {
      sitOut.set('jdbc', 'sits out (its drain rate is far below)');
      sitOut.set('jdbcTuned', 'sits out (its drain rate is far below)');
      sitOut.set('oursEvent', 'sits out (the cost of whole-transaction apply is measured at the fixed rates and in the drain)');
      for (const s of [ours, native]) {
        await s.resume();
        paused.delete(s.key);
      }
      await sampler.refresh();
      e2e = await timedRun(e2eRate, e2eSec, { txSize: e2eTxSize, connections, pipeline });
    }

    // ------------------------------------------------------------ cost on the source
    let sourceCost: SourceCost | null = null;
    if (pgbench.durationSec > 0) {
      log(`cost on the source: pgbench scale ${pgbench.scale}, ${pgbench.clients} clients, ${pgbench.durationSec} s per state, ${pgbench.captureRate.toLocaleString('en-US')} captured changes/s beside it; native paused, ours live`);
      if (!paused.has('native')) {
        await native.pause();
        paused.add('native');
      }
      await ours.resume();
      sourceCost = await measureSourceCost({
        srcAdmin,
        sourceAdminUrl: env.sourceAdminUrl,
        sourceUrl,
        connectUrl: env.connectUrl,
        connector: process.env.CONNECTOR_NAME || 'orders-source',
        ours,
        kafka,
        pgbenchBin: pgbench.bin,
        scale: pgbench.scale,
        clients: pgbench.clients,
        threads: pgbench.threads,
        durationSec: pgbench.durationSec,
        captureRate: pgbench.captureRate,
        holdSec: pgbench.holdSec,
        catchupSec: Math.max(catchupSec, drainSec),
        offer: { durationSec: offerSec, txSize: e2eTxSize, connections, pipeline },
      });
    }
    sampler.stop();

    // ------------------------------------------------------------ report
    const pgVersion = (await whAdmin.query('SHOW server_version')).rows[0].server_version;
    const results: Results = {
      date: new Date().toISOString(),
      totalSec: (Date.now() - t0) / 1000,
      machine: {
        cores: os.cpus().length,
        cpu: os.cpus()[0]?.model.trim() ?? '?',
        memGb: os.totalmem() / 2 ** 30,
        kernel: `${os.type()} ${os.release()}`,
        loadBefore,
        loadAfter: os.loadavg(),
        busyAtStart: settled.first?.busy,
        settleSec: settled.first?.waitedSec,
        quietBusy,
      },
      versions: {
        postgres: pgVersion,
        kafka: pomProp('infra/maven/pom.xml', 'kafka.broker.version'),
        connect: pomProp('infra/maven/pom.xml', 'kafka.connect.version'),
        debezium: pomProp('infra/maven/pom.xml', 'debezium.version'),
        jdbcSink: pomProp('infra/maven/debezium-jdbc/pom.xml', 'debezium.jdbc.version'),
        apicurio: pomProp('infra/maven/pom.xml', 'apicurio.registry.version'),
        node: process.version,
        commit: gitCommit(),
        kafkajs: require(path.join(REPO, 'node_modules/kafkajs/package.json')).version,
      },
      settings: { rates, durationSec, preload, preloadTxSize, catchupSec, drainSec, e2eSec, e2eTxSize, topic: TOPIC, e2eRate, connections, pipeline },
      fixed,
      drain,
      e2e,
      generator,
      sourceCost,
      profile,
    };
    results.goals = computeGoals(results);
    for (const g of results.goals) log(`goal ${g.met ? 'MET    ' : 'NOT MET'} ${g.goal}: ${g.measured}${g.met || !g.limit ? '' : ` — limit: ${g.limit}`}`);
    fs.writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(results, (k, v) => (v === Infinity ? 'Infinity' : typeof v === 'number' && Number.isNaN(v) ? null : v), 2)}\n`);
    const mdFile = path.join(outDir, 'RESULTS.md');
    const previous = fs.existsSync(mdFile) ? fs.readFileSync(mdFile, 'utf8') : '';
    fs.writeFileSync(mdFile, renderResults(results, previous));
    fs.writeFileSync(path.join(workDir, 'table.md'), `${renderTable(results)}\n`);
    log(`wrote ${path.relative(REPO, mdFile)} and results.json`);
  } finally {
    await cleanup();
    await kafka.disconnect().catch(() => undefined);
    await whAdmin.end().catch(() => undefined);
    await srcAdmin.end().catch(() => undefined);
  }
}

interface LoadRun {
  summary: LoadSummary;
  window: Window;
  /** Row versions written (inserts + updates): each should arrive once in every target. */
  expected: number;
}

async function fixedLoad(
  url: string,
  src: Client,
  rate: number,
  durationSec: number,
  extra: { maxChanges?: number; txSize?: number; connections?: number; pipeline?: number } = {},
): Promise<LoadRun> {
  const from = await sourceNow(src);
  const summary = await runLoad({ connectionString: url, rate, durationSec, applicationName: 'cdc-bench-load', ...extra });
  const to = await sourceNow(src);
  if (summary.errors > 0) log(`WARNING: ${summary.errors} changes failed: ${summary.errorSamples.map((e) => e.message).join('; ')}`);
  return { summary, window: { from, to }, expected: summary.committed.insert + summary.committed.update };
}

function fmtMs(v: number): string {
  if (!Number.isFinite(v)) return 'never';
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(2)} s`;
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
