// The benchmark's results: their shape (docs/benchmarks/results.json), the table printed at the
// end of `make bench`, and docs/benchmarks/RESULTS.md.
import type { Split } from './capture';
import { fmtBytes, type Goal } from './goals';
import type { SourceCost } from './pgbench';
import type { ProfileSummary } from './profile';
import type { SystemKey } from './systems';

export interface SystemRun {
  skipped?: string;
  arrived: number;
  expected: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  keptUp: boolean;
  catchupSec: number | null;
  cpuSec: number;
  cpuClientSec: number;
  cpuBackendsSec: number;
  peakRssMb: number;
}

export interface FixedRun {
  /** Changes/s asked; Infinity: as fast as the source takes them. */
  rate: number;
  durationSec: number;
  txSize: number;
  achievedRate: number;
  reachedRate: boolean;
  changes: number;
  rowVersions: number;
  commitP99Ms: number;
  machineBusy: number;
  /** The machine's busy share over the 5 s before the phase (after waiting for it to settle). */
  busyBefore?: number;
  systems: Partial<Record<SystemKey, SystemRun>>;
  upstreamCpuSec: Record<string, number>;
  /** Ours' freshness split at the Kafka timestamp: Debezium's part and the processor's. */
  oursSplit?: Split | null;
}

export interface DrainSystem {
  complete: boolean;
  arrived: number;
  rate: number;
  drainSec: number;
  firstArrivalSec: number;
  cpuSec: number;
  cpuUsPerChange: number;
  /** The client's part of cpuUsPerChange (our Node.js process; the Connect JVM; the walsender). */
  clientUsPerChange: number;
  /** Its warehouse backends' part (for native, the apply worker). */
  backendsUsPerChange: number;
  peakRssMb: number;
  machineBusy: number;
  parts: Record<string, number>;
}

export interface DrainRun {
  changes: number;
  deletes: number;
  rowVersions: number;
  txSize: number;
  preloadSec: number;
  preloadRate: number;
  captureLagSec: number;
  captureRate: number;
  systems: Partial<Record<SystemKey, DrainSystem>>;
  /** Our processor's /metrics after its drain: batches written, messages in them, seconds spent writing them. */
  writer?: { batches: number; messages: number; writeSec: number; lanes: number } | null;
}

export interface Results {
  date: string;
  totalSec: number;
  machine: {
    cores: number; cpu: string; memGb: number; kernel: string; loadBefore: number[]; loadAfter: number[];
    /** Busy share (all cores, 5 s) when the first phase began, and how long the bench waited for it to settle. */
    busyAtStart?: number; settleSec?: number;
    /** The busy share the bench waited for (BENCH_QUIET_BUSY). */
    quietBusy?: number;
  };
  versions: Record<string, string>;
  settings: {
    rates: number[];
    durationSec: number;
    preload: number;
    preloadTxSize: number;
    catchupSec: number;
    drainSec: number;
    e2eSec: number;
    e2eTxSize: number;
    topic: string;
    e2eRate?: number;
    connections?: number;
    pipeline?: number;
  };
  fixed: FixedRun[];
  drain: DrainRun;
  /** Live, end to end, at BENCH_E2E_RATE. */
  e2e: FixedRun | null;
  /** What the load generator offers against the source with no consumer running (the preload). */
  generator?: { rate: number; txSize: number; connections: number; pipeline: number } | null;
  /** pgbench on the source with capture stopped / running / the processor stopped; WAL held. */
  sourceCost?: SourceCost | null;
  /** Issue 14's goals, computed from this run's figures (bench/lib/goals.ts). */
  goals?: Goal[];
  profile: (ProfileSummary & { file: string }) | null;
}

export const NAMES: Record<SystemKey, string> = {
  ours: 'ours (TypeScript processor)',
  oursEvent: 'ours, APPLY_MODE=event (per batch)',
  jdbc: 'Debezium JDBC sink',
  jdbcTuned: 'Debezium JDBC sink, tuned',
  native: 'PostgreSQL logical replication',
};
const KEYS: SystemKey[] = ['ours', 'oursEvent', 'jdbc', 'jdbcTuned', 'native'];

const n0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const num = (v: unknown): number => (v === 'Infinity' ? Infinity : typeof v === 'number' ? v : NaN);

export function ms(v: unknown): string {
  const x = num(v);
  if (x === Infinity) return 'never¹';
  if (!Number.isFinite(x)) return '–';
  if (x < 10) return `${x.toFixed(1)} ms`;
  if (x < 1000) return `${Math.round(x)} ms`;
  return `${(x / 1000).toFixed(2)} s`;
}

const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–');

function table(head: string[], rows: string[][], align: string[]): string {
  const sep = align.map((a) => (a === 'r' ? '---:' : '---'));
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

const rateLabel = (f: FixedRun) => `${num(f.rate) === Infinity ? 'max' : n0(f.rate)} (${n0(f.achievedRate)})`;

/** Kept up: every row version in shortly after the load ended (no backlog built up during the run). */
export const keptUp = (f: FixedRun, s: SystemRun | undefined) =>
  Boolean(s && !s.skipped && s.keptUp && num(s.catchupSec) <= Math.max(2, 0.05 * f.durationSec));

function fixedTable(runs: FixedRun[]): string {
  const rows: string[][] = [];
  for (const f of runs) {
    for (const k of KEYS) {
      const s = f.systems[k];
      if (!s) continue;
      const rate = rateLabel(f);
      if (s.skipped) {
        rows.push([rate, NAMES[k], '–', '–', '–', `not run: ${s.skipped}`, '–', '–']);
        continue;
      }
      rows.push([
        rate,
        NAMES[k],
        ms(s.p50),
        ms(s.p95),
        ms(s.p99),
        s.keptUp ? `${num(s.catchupSec).toFixed(1)} s` : `never: ${n0(s.arrived)} of ${n0(s.expected)} rows`,
        `${num(s.cpuSec).toFixed(1)} (${num(s.cpuClientSec).toFixed(1)} + ${num(s.cpuBackendsSec).toFixed(1)})`,
        n0(s.peakRssMb),
      ]);
    }
  }
  return table(
    ['changes/s asked (done)', 'system', 'freshness p50', 'p95', 'p99', 'all in³', 'CPU s (client + warehouse)', 'peak RSS MB'],
    rows,
    ['r', 'l', 'r', 'r', 'r', 'l', 'r', 'r'],
  );
}

function splitTable(runs: FixedRun[]): string {
  const rows = runs
    .filter((f) => f.oursSplit)
    .map((f) => {
      const s = f.oursSplit!;
      const o = f.systems.ours!;
      return [rateLabel(f), ms(o.p50), ms(s.capture.p50), ms(s.processor.p50), ms(o.p99), ms(s.capture.p99), ms(s.processor.p99)];
    });
  return table(
    ['changes/s asked (done)', 'ours p50', '= Debezium → Kafka', '+ processor', 'ours p99', 'Debezium → Kafka p99', 'processor p99'],
    rows,
    ['r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function drainTable(r: Results): string {
  const rows = KEYS.filter((k) => r.drain.systems[k]).map((k) => {
    const d = r.drain.systems[k]!;
    return [
      NAMES[k],
      `${n0(d.rate)}${d.complete ? '' : '²'}`,
      `${num(d.drainSec).toFixed(1)} s`,
      `${num(d.cpuSec).toFixed(1)} (${num(d.parts.client).toFixed(1)} + ${num(d.parts.backends).toFixed(1)})`,
      `${n0(d.cpuUsPerChange)} (${n0(num(d.clientUsPerChange))} + ${n0(num(d.backendsUsPerChange))})`,
      n0(d.peakRssMb),
    ];
  });
  return table(['system', 'changes/s (steady)', 'resume → last row', 'CPU s (client + warehouse)', 'CPU µs/change (client + warehouse)', 'peak RSS MB'], rows, ['l', 'r', 'r', 'r', 'r', 'r']);
}

function ratiosTable(r: Results): string {
  const o = r.drain.systems.ours;
  const rows: string[][] = [];
  const peers: SystemKey[] = ['jdbc', 'jdbcTuned', 'native'];
  rows.push(['sustained changes/s (drain), higher is better', ...peers.map((p) => ratio(num(o?.rate), num(r.drain.systems[p]?.rate)))]);
  rows.push(['CPU per change (drain), lower is better', ...peers.map((p) => ratio(num(o?.cpuUsPerChange), num(r.drain.systems[p]?.cpuUsPerChange)))]);
  for (const f of r.fixed) {
    const os = f.systems.ours;
    if (!os || os.skipped) continue;
    rows.push([`p99 at ${n0(f.rate)}/s, lower is better`, ...peers.map((p) => {
      const ps = f.systems[p];
      if (!ps || ps.skipped) return 'peer not run';
      const a = num(os.p99);
      const b = num(ps.p99);
      if (b === Infinity && a !== Infinity) return 'peer fell behind';
      return ratio(a, b);
    })]);
    rows.push([`CPU s at ${n0(f.rate)}/s, lower is better`, ...peers.map((p) => {
      const ps = f.systems[p];
      return !ps || ps.skipped ? '–' : ratio(num(os.cpuSec), num(ps.cpuSec));
    })]);
  }
  return table(['ours ÷ peer', NAMES.jdbc, NAMES.jdbcTuned, NAMES.native], rows, ['l', 'r', 'r', 'r']);
}

/** One line per goal of issue 14: met or not, what was measured, and what limits it. */
export function goalLines(goals: Goal[]): string[] {
  return goals.map((g) => `- ${g.goal}: ${g.met ? '**met**' : '**not met**'} — ${g.measured}${g.met || !g.limit ? '' : `. Limit: ${g.limit}`}.`);
}

function sourceCostLines(r: Results): string[] {
  const sc = r.sourceCost;
  if (!sc) return [];
  const st = sc.settings;
  const row = (label: string, k: keyof SourceCost['runs']) => {
    const x = sc.runs[k];
    const base = sc.runs.captureStopped;
    return [
      label,
      x ? n0(x.tps) : '–',
      x ? `${x.latencyAvgMs.toFixed(2)} ms` : '–',
      x && base ? `${((x.tps / base.tps) * 100).toFixed(1)}%` : '–',
      n0(num(sc.capturedRates[k])),
      x?.machineBusy === undefined ? '–' : `${Math.round(x.machineBusy * 100)}%`,
    ];
  };
  const out = [
    `Cost on the source: pgbench (TPC-B like, scale ${st.scale}, ${st.clients} clients, ${st.durationSec} s each, database \`bench_pgbench\` on the source cluster) while the load generator writes ${n0(st.captureRate)} captured changes/s to \`orders\`:`,
    '',
    table(
      ['pipeline', 'pgbench TPS', 'latency avg', 'of capture stopped', 'captured changes/s beside', 'machine busy'],
      [row('capture stopped (connector stopped)', 'captureStopped'), row('capture running, pipeline keeping up', 'captureRunning'), row('capture running, processor stopped', 'processorStopped')],
      ['l', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  ];
  const w = sc.wal;
  if (w) {
    out.push(`With the processor stopped for ${n0(w.holdSec)} s, Debezium's slot \`${st.slot}\` held at most ${fmtBytes(w.maxRetainedBytes)} of WAL (current LSN − restart_lsn; ${fmtBytes(w.maxUnconfirmedBytes)} past confirmed_flush_lsn; ${fmtBytes(w.endRetainedBytes)} at the end). Debezium confirms what Kafka has stored, so a stopped processor leaves its backlog in Kafka rather than in the source's WAL. ` +
      `Started again, the processor stored the ${n0(w.backlogMessages)} waiting messages ${w.caughtUp ? `in ${w.drainSec.toFixed(1)} s (${n0(w.drainRate)} messages/s, start-up included)` : 'NOT within the wait'}.`);
    out.push('');
  }
  return out;
}

function profileSection(r: Results): string[] {
  const p = r.profile;
  const o = r.drain.systems.ours;
  if (!p || !o) return ['No processor profile was recorded in this run.'];
  const out: string[] = [];
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const client = num(o.parts.client);
  const backends = num(o.parts.backends);
  const busyShare = num(o.parts.clientCores);
  const parts: Array<[string, number]> = [
    ['processor (the Node.js process)', client],
    ['its PostgreSQL backend(s) in the warehouse (COPY, history append, merge)', backends],
    ['Kafka broker (serving fetches)', num(o.parts.kafka)],
    // Runs before this field existed did not split the bench's counts out of the other processes.
    ['other warehouse PostgreSQL processes (WAL writer, checkpointer, …)', num(o.parts.warehousePg) - backends - (num(o.parts.benchQueries) || 0)],
    ...(Number.isFinite(num(o.parts.benchQueries)) ? [['the benchmark\'s own queries (counting arrivals)', num(o.parts.benchQueries)] as [string, number]] : []),
  ];
  parts.sort((a, b) => b[1] - a[1]);
  out.push(`During the drain (${n0(r.drain.changes)} changes, ${num(o.drainSec).toFixed(1)} s from start to last row; machine ${Math.round(o.machineBusy * 100)}% busy over both cores), CPU seconds by component:`);
  out.push('');
  out.push(table(['component', 'CPU s', 'share of one core'], parts.map(([n, v]) => [n, v.toFixed(1), pct(v / Math.max(0.001, num(o.drainSec)))]), ['l', 'r', 'r']));
  out.push('');
  const w = r.drain.writer;
  if (w && w.batches > 0) {
    const span = num(o.drainSec) - num(o.firstArrivalSec) + w.writeSec / w.batches; // first batch's write included
    const lanes = Math.max(1, Math.min(w.lanes ?? 1, 2)); // the topic has 2 partitions: at most 2 lanes get any
    out.push(`The processor's writer${lanes > 1 ? `s (${lanes} lanes, each one warehouse transaction at a time on its own connection)` : ' (one warehouse transaction per batch, one at a time)'} ` +
      `wrote ${n0(w.batches)} batches of ${n0(w.messages / w.batches)} messages on average, ${(1000 * w.writeSec / w.batches).toFixed(0)} ms each ` +
      '(COPY into the stage, append to `orders_fact`, merge into `orders_latest`, offsets, COMMIT): ' +
      `**writing ${pct(w.writeSec / lanes / Math.max(0.001, span))} of the drain${lanes > 1 ? ' per lane' : ''}**; ` +
      `${lanes > 1 ? 'one lane' : 'the writer'} alone would take ${n0(w.messages / w.writeSec)} messages/s. ` +
      'A lane decodes its next batch while its previous one is written; a full next batch waits for that commit.');
    out.push('');
  }
  out.push(`**Busiest component: ${parts[0][0]}.** The processor's JavaScript thread over the drain (first to last batch, ${(p.wallMs / 1000).toFixed(1)} s of samples): ` +
    `${pct(p.js)} running JavaScript, ${pct(p.gc)} garbage collection, ${pct(p.program)} V8/native (parsing, compiling, I/O callbacks), ${pct(p.idle)} idle (waiting for Kafka or the warehouse). ` +
    `Between its first and last batch the Node.js process used ${pct(busyShare)} of one core (its JavaScript thread plus V8's GC and compiler threads and libuv's).`);
  out.push('');
  out.push('Self time by component (share of the profiled window):');
  out.push('');
  out.push(table(['component', 'self time'], p.components.map((c) => [c.name, pct(c.share)]), ['l', 'r']));
  out.push('');
  out.push('Top functions by self time:');
  out.push('');
  out.push(table(['function', 'where', 'self time'], p.topFunctions.map((f) => [`\`${f.name}\``, f.where || '(native)', pct(f.share)]), ['l', 'l', 'r']));
  out.push('');
  out.push(`The whole profile (start-up, the drain and shutdown): [${p.file}](${p.file}) — open it in Chrome DevTools (Performance) or speedscope.`);
  return out;
}

export const NOTES_MARKER = '<!-- Everything below this line is kept when `make bench` rewrites this file. -->';

export function renderTable(r: Results): string {
  return [
    `Benchmark ${r.date.slice(0, 16).replace('T', ' ')} UTC — ${r.machine.cores} cores, load average ${r.machine.loadBefore.map((x) => x.toFixed(2)).join(' ')} at the start`,
    '',
    'Freshness: source commit → row visible in the target, per row version (ms), all systems loading at once:',
    '',
    fixedTable(r.fixed),
    '',
    'Where ours\' freshness goes: Debezium\'s part (source commit → the event\'s Kafka timestamp; the JDBC sink has the same) and the processor\'s (Kafka timestamp → visible in the warehouse; percentiles of each part, so they do not add up exactly):',
    '',
    splitTable([...r.fixed, ...(r.e2e ? [r.e2e] : [])]),
    '',
    `Maximum throughput: ${n0(r.drain.changes)} preloaded changes (${r.drain.txSize} per source transaction) drained by each system alone:`,
    '',
    drainTable(r),
    '',
    ...(r.e2e
      ? [`End to end, live, ${num(r.e2e.rate) === Infinity ? 'as fast as the source takes changes' : `${n0(num(r.e2e.rate))} changes/s offered`} (${r.e2e.txSize} per transaction, ${r.e2e.durationSec} s; achieved ${n0(r.e2e.achievedRate)}/s${r.sourceCost?.generatorAlone ? `; the load generator alone against the source, capture stopped, offers ${n0(r.sourceCost.generatorAlone.rate)}/s with ${r.sourceCost.generatorAlone.connections} connections × ${r.sourceCost.generatorAlone.pipeline} in flight, ${r.sourceCost.generatorAlone.txSize} per transaction` : ''}${r.generator ? `; the preload reached ${n0(r.generator.rate)}/s (${r.generator.txSize} per transaction, no consumer running)` : ''}):`, '', fixedTable([r.e2e]), '']
      : []),
    ...sourceCostLines(r),
    'Ratios, ours ÷ peer:',
    '',
    ratiosTable(r),
    '',
    'Goals (issue 14), from this run\'s own figures:',
    '',
    ...goalLines(r.goals ?? []),
  ].join('\n');
}

export function renderResults(r: Results, previous: string): string {
  const kept = previous.includes(NOTES_MARKER) ? previous.slice(previous.indexOf(NOTES_MARKER) + NOTES_MARKER.length).replace(/^\n+/, '') : '';
  // The busy share measured before the first phase says more than the load average, which trails
  // by minutes (a stack just started, its JITs done, still shows a load of 5).
  const busy = r.machine.busyAtStart;
  const loadNote = busy !== undefined
    ? ` Before the first phase the bench waited ${Math.round(r.machine.settleSec ?? 0)} s for the machine to settle: ${Math.round(busy * 100)}% busy (all cores, 5 s), the stack idle with the systems set up.` +
      (busy > (r.machine.quietBusy ?? 0.4) ? ' The machine was **not quiet**: absolute figures are pessimistic; the ratios, measured side by side, hold better.' : '')
    : Math.max(...r.machine.loadBefore.slice(0, 1)) >= 1.5
      ? ` The machine was **not quiet** (1-minute load average ${r.machine.loadBefore[0].toFixed(2)} at the start): absolute figures are pessimistic; the ratios, measured side by side, hold better.`
      : '';
  const lines = [
    '# Benchmark: our processor vs the Debezium JDBC sink vs native logical replication',
    '',
    `Written by \`make bench\` (bench/run.sh) on ${r.date.slice(0, 19).replace('T', ' ')} UTC in ${(r.totalSec / 60).toFixed(1)} minutes. Raw figures: [results.json](results.json).`,
    '',
    `**Machine:** ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memGb.toFixed(0)} GiB, ${r.machine.kernel}; load average at start ${r.machine.loadBefore.map((x) => x.toFixed(2)).join(' ')}, at end ${r.machine.loadAfter.map((x) => x.toFixed(2)).join(' ')}.${loadNote} The whole stack (source and warehouse PostgreSQL, Kafka, Apicurio Registry, Kafka Connect with Debezium) shares the two cores with the systems under test.`,
    '',
    `**Code:** commit ${r.versions.commit}. **Versions:** PostgreSQL ${r.versions.postgres}; Kafka ${r.versions.kafka} (broker), Kafka Connect ${r.versions.connect}; Debezium PostgreSQL connector ${r.versions.debezium}; Debezium JDBC sink ${r.versions.jdbcSink}; Apicurio Registry ${r.versions.apicurio}; Node.js ${r.versions.node}, kafkajs ${r.versions.kafkajs}.`,
    '',
    '![freshness against rate](freshness-vs-rate.png)',
    '',
    renderTable(r),
    '',
    '¹ never: the row versions had not all arrived when the wait ended (the system fell behind the rate): that percentile is beyond the wait. ² the drain was stopped at its time limit; the rate is over what arrived. ³ all in: when the last row version of the run arrived, counted from the end of the load; a system that needs seconds here fell behind the rate during the run and caught up afterwards.',
    '',
    'CPU seconds are those of the system\'s own processes over the run (from the start of the load until the system caught up): the client (our Node.js process; the sink\'s task thread in Kafka Connect, or during the drain the whole Connect JVM with its GC and JIT threads; the native walsender on the source) plus its backends in the warehouse (for native, the apply worker). Peak RSS: the client\'s resident memory (for the JDBC sink the whole Connect JVM, shared with the Debezium source connector) plus the private memory of its PostgreSQL processes. The shared upstream (Debezium, Kafka, the source database) is in results.json (`upstreamCpuSec`).',
    '',
    '## What limits our processor',
    '',
    ...profileSection(r),
    '',
    '## Method',
    '',
    '- **Load**: `seed/lib/workload.ts` (`runLoad`, the same generator as `make load`): 50% inserts, 40% status updates, 10% deletes on `public.orders`, each change its own autocommit transaction in the fixed-rate runs; every insert and update sets `updated_at = clock_timestamp()`, so every row version carries its source commit time.',
    '- **Ours**: a second processor instance (same code, `dist/processor/src/main.js`, default batch settings) with its own consumer group, writing into its own database `bench_ours` (migrations applied), started at the end of the topic. The stack\'s own processor is stopped for the run (one consumer of the topic fewer on two cores) and restarted afterwards; it then catches up from its stored offsets. Arrival: a statement-level trigger on `orders_latest` notes `clock_timestamp()` per warehouse transaction after the merge, the last statement before COMMIT; each `orders_fact` row (every row version) finds its transaction through `xmin`. Per batch, not per row, so the measurement costs ours almost nothing.',
    '- **Debezium JDBC sink**: `bench/connectors/jdbc-sink.json` in the stack\'s Kafka Connect: upsert, `primary.key.mode=record_key`, `delete.enabled`, `schema.evolution=basic` (it creates its table), one task, defaults otherwise (batch.size 500); it reads the same Avro topic with the Apicurio converter (Confluent wire format: `headers.enabled=false`, `Default4ByteIdHandler`, `use-id=contentId`), into database `bench_jdbc` as its own role; started at the end of the topic.',
    '- **Debezium JDBC sink, tuned**: a second connector `tuned-jdbc-sink` with `bench/connectors/jdbc-sink-tuned.json` laid over the same config: `tasks.max` = the topic\'s partitions, `batch.size` 4000, `consumer.override.max.poll.records` 4000, into `bench_jdbc_tuned`. `dialect.postgres.unnest.insert.enabled` and pgjdbc\'s `reWriteBatchedInserts` make the sink fail on this workload (`ON CONFLICT DO UPDATE command cannot affect row a second time`: one statement with two versions of a key) unless `use.reduction.buffer` drops intermediate versions, so they are off (bench/README.md). The freshness goals compare ours against the better of the two sinks.',
    '- **Native**: publication `bench_pub` on the source, subscription `bench_sub` (initial copy of the table) into `bench_native`; the apply worker fires the arrival trigger (enabled ALWAYS).',
    '- **Arrival** for the JDBC sink and native: a deferred constraint trigger (fires at COMMIT) per row version: `arrived_at = clock_timestamp()`. Freshness = arrival − `updated_at`, on one machine\'s clock. Deletes are not timed (no commit time in the row), they are loaded all the same.',
    `- **Fixed rates**: ${r.settings.rates.map(n0).join(', ')} changes/s for ${r.settings.durationSec} s each, all systems loading at once from one load; then each is waited for (at most ${r.settings.catchupSec} s) until every row version of the run arrived. A system that does not catch up is marked and left out of the higher rates.`,
    `- **Maximum throughput**: the systems paused (our processor stopped, the connectors paused, the subscription disabled), ${n0(r.settings.preload)} changes preloaded as fast as the source takes them (${r.settings.preloadTxSize} changes per transaction), Debezium left to publish them all; then each system resumed alone and timed until every row version arrived (at most ${r.settings.drainSec} s). The steady rate is taken between the arrival of the 10th and the 90th percentile of the row versions (start-up and the first and last batch left out) and scaled to all changes (when those lie less than a second apart, a drain of a few batches, the whole drain from resume to the last row instead); the drain CPU of the Debezium-based systems leaves out the capture (done before), native\'s includes its walsender\'s decoding.`,
    `- **End to end**: ours and native live again while the load generator offers ${r.settings.e2eRate === undefined || num(r.settings.e2eRate) === Infinity ? 'as many changes as the source takes' : `${n0(num(r.settings.e2eRate))} changes/s`} (${r.settings.e2eTxSize} changes per transaction, ${r.settings.connections ?? 8} connections × ${r.settings.pipeline ?? 8} transactions in flight, ${r.settings.e2eSec} s); the JDBC sinks sit it out. What the generator can offer at all is the preload\'s rate (the same generator with no consumer running). A system kept up when every row version was in within 2 s (or 5% of the run) after the load ended.`,
    '- **Cost on the source**: pgbench (TPC-B like) in its own database `bench_pgbench` on the source cluster, dropped afterwards, beside a steady captured load on `orders`: Debezium\'s connector stopped (`PUT /connectors/<name>/stop`, then `/resume`), running with the pipeline keeping up, running with our processor stopped; meanwhile the WAL held by Debezium\'s slot is sampled every second, and the processor\'s catch-up is timed when it starts again.',
    '- **Goals**: computed by `bench/lib/goals.ts` from this run\'s figures only (results.json `goals`); a goal not met names the component that limits it: for freshness the larger leg of ours (Debezium → Kafka or the processor), for the drain the busier of the Node.js process and its warehouse backends, end to end the generator when it cannot offer the rate, else the leg with the larger p99.',
    '- **CPU and memory** from `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS; RssAnon for PostgreSQL backends, whose RSS also counts shared buffers), sampled every 250 ms; threads by name for the sink\'s task in the Connect JVM.',
    '- **Waiting for arrivals**: the bench counts the arrived row versions in each target (at most every 250 ms, and at least nine times as long as a count took, so a count that scans a grown table uses at most a tenth of a core; no parallel workers); the CPU of these counts is reported apart, never as a system\'s.',
    '- **Profile**: the benchmark\'s processor runs the drain under `node --cpu-prof`; the summary keeps the samples between its first and last batch.',
    '',
    NOTES_MARKER,
    '',
    kept,
  ];
  return `${lines.join('\n').replace(/\n+$/, '')}\n`;
}
