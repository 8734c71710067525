// The benchmark's results: their shape (docs/benchmarks/results.json), the table printed at the
// end of `make bench`, and docs/benchmarks/RESULTS.md.
import type { Split } from './capture';
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
  machine: { cores: number; cpu: string; memGb: number; kernel: string; loadBefore: number[]; loadAfter: number[] };
  versions: Record<string, string>;
  settings: { rates: number[]; durationSec: number; preload: number; preloadTxSize: number; catchupSec: number; drainSec: number; e2eSec: number; e2eTxSize: number; topic: string };
  fixed: FixedRun[];
  drain: DrainRun;
  /** Live, end to end, at the source's maximum rate. */
  e2e: FixedRun | null;
  profile: (ProfileSummary & { file: string }) | null;
}

export const NAMES: Record<SystemKey, string> = {
  ours: 'ours (TypeScript processor)',
  jdbc: 'Debezium JDBC sink',
  native: 'PostgreSQL logical replication',
};
const KEYS: SystemKey[] = ['ours', 'jdbc', 'native'];

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
      n0(d.cpuUsPerChange),
      n0(d.peakRssMb),
    ];
  });
  return table(['system', 'changes/s (steady)', 'resume → last row', 'CPU s (client + warehouse)', 'CPU µs/change', 'peak RSS MB'], rows, ['l', 'r', 'r', 'r', 'r', 'r']);
}

/** p99 of a system at the run closest to `rate`. */
function p99At(r: Results, k: SystemKey, rate: number): number {
  const f = [...r.fixed].sort((a, b) => Math.abs(a.rate - rate) - Math.abs(b.rate - rate))[0];
  const s = f?.systems[k];
  return s && !s.skipped ? num(s.p99) : NaN;
}

function ratiosTable(r: Results): string {
  const o = r.drain.systems.ours;
  const rows: string[][] = [];
  const peers: SystemKey[] = ['jdbc', 'native'];
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
  return table(['ours ÷ peer', NAMES.jdbc, NAMES.native], rows, ['l', 'r', 'r']);
}

function goals(r: Results): string[] {
  const o = r.drain.systems.ours;
  const j = r.drain.systems.jdbc;
  const out: string[] = [];
  const mark = (ok: boolean) => (ok ? '**met**' : '**not met**');
  const worstP99 = (k: SystemKey) => Math.max(...r.fixed.map((f) => (f.systems[k] && !f.systems[k]!.skipped ? num(f.systems[k]!.p99) : -1)));
  const tput = num(o?.rate) / num(j?.rate);
  // "at no worse p99": at every rate both ran, ours' p99 is not above the sink's.
  const worseAt = r.fixed.filter((f) => {
    const a = f.systems.ours;
    const b = f.systems.jdbc;
    return a && b && !a.skipped && !b.skipped && num(a.p99) > num(b.p99);
  });
  const p99Text = worseAt.length
    ? `p99 worse than the sink's at ${worseAt.map((f) => `${n0(f.rate)}/s (${ms(f.systems.ours!.p99)} vs ${ms(f.systems.jdbc!.p99)})`).join(', ')}`
    : 'p99 no worse than the sink\'s at every rate both ran';
  out.push(`- ≥ 2× the JDBC sink's sustained throughput at no worse p99: ${mark(tput >= 2 && worseAt.length === 0)} — ${Number.isFinite(tput) ? tput.toFixed(2) : '–'}× (${n0(num(o?.rate))} vs ${n0(num(j?.rate))} changes/s); ${p99Text}; worst p99 over all rates: ours ${ms(worstP99('ours'))}, sink ${ms(worstP99('jdbc'))}.`);
  const p99k = p99At(r, 'ours', 1000);
  const f1k = r.fixed.find((f) => f.rate === 1000);
  const p50k = f1k?.systems.ours ? num(f1k.systems.ours.p50) : NaN;
  out.push(`- p99 ≤ 2 s at 1,000 changes/s: ${mark(p99k <= 2000)} — p99 ${ms(p99k)}${f1k ? '' : ' (closest rate run)'}.`);
  // End to end: every stage must keep up; the slowest measured one bounds the chain.
  const live = [...r.fixed, ...(r.e2e ? [r.e2e] : [])].filter((f) => keptUp(f, f.systems.ours));
  const highest = live.length ? live.reduce((a, b) => (b.achievedRate > a.achievedRate ? b : a)) : null;
  const e = r.e2e;
  const eo = e?.systems.ours;
  out.push(`- ≥ 10,000 changes/s sustained end to end: ${mark((highest?.achievedRate ?? 0) >= 10_000)} — ` +
    (e && eo && !eo.skipped
      ? `at the source's maximum (${n0(e.achievedRate)} changes/s, ${e.txSize} per transaction, ${e.durationSec} s) ours ${keptUp(e, eo) ? 'kept up' : 'fell behind'}: p50 ${ms(eo.p50)}, p99 ${ms(eo.p99)}, every row in ${num(eo.catchupSec).toFixed(1)} s after the load. `
      : '') +
    `Highest rate ours kept up with live: ${highest ? `${n0(highest.achievedRate)} changes/s` : 'none'}. ` +
    `Stage ceilings: the source ${n0(Math.max(...r.fixed.map((f) => f.achievedRate)))} autocommit changes/s and ${n0(r.drain.preloadRate)}/s with ${r.drain.txSize} changes per transaction; ` +
    `Debezium capture ≥ ${n0(r.drain.captureRate)}/s (it kept pace with the preload); our processor ${n0(num(o?.rate))}/s (drain).`);
  out.push('');
  out.push('Issue 3 (processor performance):');
  out.push(`- replay of a pre-filled topic ≥ 50,000 events/s: ${mark(num(o?.rate) * (1 + deleteShare(r)) >= 50_000)} — ${n0(num(o?.rate))} changes/s ≈ ${n0(num(o?.rate) * (1 + deleteShare(r)))} Kafka messages/s (a delete is an event plus a tombstone).`);
  out.push(`- at 1,000 changes/s: freshness p50 ≤ 500 ms: ${mark(p50k <= 500)} (${ms(p50k)}); p99 ≤ 2 s: ${mark(p99k <= 2000)} (${ms(p99k)}).`);
  return out;
}

/** Deletes per change in the preload (each also yields a tombstone message). */
function deleteShare(r: Results): number {
  return r.drain.changes > 0 ? r.drain.deletes / r.drain.changes : 0;
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
    ['other warehouse PostgreSQL processes (WAL writer, checkpointer, …)', num(o.parts.warehousePg) - backends],
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
    'Freshness: source commit → row visible in the target, per row version (ms), all three systems loading at once:',
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
      ? [`End to end, live, as fast as the source takes changes (${r.e2e.txSize} per transaction, ${r.e2e.durationSec} s):`, '', fixedTable([r.e2e]), '']
      : []),
    'Ratios, ours ÷ peer:',
    '',
    ratiosTable(r),
    '',
    'Goals (issue 5):',
    '',
    ...goals(r),
  ].join('\n');
}

export function renderResults(r: Results, previous: string): string {
  const kept = previous.includes(NOTES_MARKER) ? previous.slice(previous.indexOf(NOTES_MARKER) + NOTES_MARKER.length).replace(/^\n+/, '') : '';
  const loadNote =
    Math.max(...r.machine.loadBefore.slice(0, 1)) >= 1.5
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
    '- **Native**: publication `bench_pub` on the source, subscription `bench_sub` (initial copy of the table) into `bench_native`; the apply worker fires the arrival trigger (enabled ALWAYS).',
    '- **Arrival** for the JDBC sink and native: a deferred constraint trigger (fires at COMMIT) per row version: `arrived_at = clock_timestamp()`. Freshness = arrival − `updated_at`, on one machine\'s clock. Deletes are not timed (no commit time in the row), they are loaded all the same.',
    `- **Fixed rates**: ${r.settings.rates.map(n0).join(', ')} changes/s for ${r.settings.durationSec} s each, all three systems loading at once from one load; then each is waited for (at most ${r.settings.catchupSec} s) until every row version of the run arrived. A system that does not catch up is marked and left out of the higher rates.`,
    `- **Maximum throughput**: the three systems paused (our processor stopped, the connector paused, the subscription disabled), ${n0(r.settings.preload)} changes preloaded as fast as the source takes them (${r.settings.preloadTxSize} changes per transaction), Debezium left to publish them all; then each system resumed alone and timed until every row version arrived (at most ${r.settings.drainSec} s). The steady rate is taken between the arrival of the 10th and the 90th percentile of the row versions (start-up and the first and last batch left out) and scaled to all changes; the drain CPU of the Debezium-based systems leaves out the capture (done before), native\'s includes its walsender\'s decoding.`,
    `- **End to end**: last, ours and native live again while the load generator writes as fast as the source takes it (${r.settings.e2eTxSize} changes per transaction, ${r.settings.e2eSec} s); the JDBC sink sits it out. A system kept up when every row version was in within 2 s (or 5% of the run) after the load ended.`,
    '- **CPU and memory** from `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS; RssAnon for PostgreSQL backends, whose RSS also counts shared buffers), sampled every 250 ms; threads by name for the sink\'s task in the Connect JVM.',
    '- **Profile**: the benchmark\'s processor runs the drain under `node --cpu-prof`; the summary keeps the samples between its first and last batch.',
    '',
    NOTES_MARKER,
    '',
    kept,
  ];
  return `${lines.join('\n').replace(/\n+$/, '')}\n`;
}
