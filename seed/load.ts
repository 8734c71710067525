// `make load RATE=... DURATION=...`: a steady mixed workload on the source table with a live
// progress line. The work itself is runLoad (lib/workload.ts), shared with the benchmark.
import { ConfigError, EXIT, ProgressLine, fmt, intFlag, numberFlag, parseFlags, runMain } from './lib/cli';
import { requireEnv } from './lib/env';
import { DEFAULT_MIX, formatMix, parseMix } from './lib/mix';
import { LoadProgress, LoadSummary, runLoad } from './lib/workload';

export { runLoad } from './lib/workload';
export type { LoadOptions, LoadProgress, LoadSummary } from './lib/workload';

const HELP = `Usage: make load RATE=<changes/s> DURATION=<s> [ARGS="..."]
       node dist/seed/load.js --rate R --duration S [options]

Writes a steady mix of inserts, status updates and deletes to public.orders
(SOURCE_DATABASE_URL) at the requested rate, prints a progress line every second and a
summary at the end (Ctrl-C stops early and still prints it). Every insert and update sets
updated_at = clock_timestamp(), the row version's commit time.

  --rate R          changes per second, or "max" for as fast as possible (default 200)
  --duration S      seconds to run (default 60)
  --max-changes N   stop after N changes even if time is left
  --mix SPEC        relative weights (default insert=${DEFAULT_MIX.insert},update=${DEFAULT_MIX.update},delete=${DEFAULT_MIX.delete})
  --tx-size N       changes per transaction (default 1: each change its own autocommit statement)
  --connections N   database connections (default 8)
  --pipeline N      transactions in flight per connection (default 8)
  --seed N          seed for ops, products and rows (default: time-based)
  -h, --help        this text`;

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    rate: { type: 'string' },
    duration: { type: 'string' },
    'max-changes': { type: 'string' },
    mix: { type: 'string' },
    'tx-size': { type: 'string' },
    connections: { type: 'string' },
    pipeline: { type: 'string' },
    seed: { type: 'string' },
  });
  if (flags.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const rate = flags.rate === 'max' ? Infinity : numberFlag('rate', flags.rate, 200, 0.001);
  const durationSec = numberFlag('duration', flags.duration, 60, 0.001);
  let mix = DEFAULT_MIX;
  try {
    if (typeof flags.mix === 'string') mix = parseMix(flags.mix);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const url = requireEnv(process.env, 'SOURCE_DATABASE_URL');

  const ac = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    // First Ctrl-C: stop and print the summary; second: leave at once.
    if (++interrupts > 1) process.exit(EXIT.interrupted);
    ac.abort();
  });
  process.on('SIGTERM', () => ac.abort());

  const line = new ProgressLine(process.stderr, 1);
  const opts = {
    connectionString: url,
    rate,
    durationSec,
    maxChanges: flags['max-changes'] === undefined ? undefined : intFlag('max-changes', flags['max-changes'], 0, 1),
    mix,
    txSize: intFlag('tx-size', flags['tx-size'], 1, 1, 10_000),
    connections: intFlag('connections', flags.connections, 8, 1, 256),
    pipeline: intFlag('pipeline', flags.pipeline, 8, 1, 10_000),
    seed: flags.seed === undefined ? undefined : intFlag('seed', flags.seed, 0, 0),
    signal: ac.signal,
    onProgress: (p: LoadProgress) => line.update(progressText(p)),
    onStart: () =>
      console.log(
        `load: ${rateText(rate)} for ${durationSec} s${opts.maxChanges ? ` or ${fmt(opts.maxChanges)} changes` : ''}; ` +
          `${formatMix(mix)}; ${opts.connections} connections × ${opts.pipeline} in flight, ` +
          `${opts.txSize === 1 ? 'each change its own transaction' : `${opts.txSize} changes per transaction`}`,
      ),
  };
  const summary = await runLoad(opts);
  line.done();
  for (const l of summaryLines(summary)) console.log(l);
  if (summary.interrupted) return EXIT.interrupted;
  return summary.errors > 0 ? EXIT.failed : EXIT.ok;
}

function rateText(rate: number): string {
  return rate === Infinity ? 'as fast as possible' : `${fmt(rate)} changes/s`;
}

export function progressText(p: LoadProgress): string {
  const behind = p.skipped > 0 ? ` | behind: ${fmt(p.skipped)} skipped` : '';
  return (
    `load ${p.elapsedSec.toFixed(0).padStart(4)}s  ${fmt(p.currentRate).padStart(6)}/s now, ${fmt(p.averageRate)}/s avg` +
    (p.targetRate === Infinity ? '' : ` (target ${fmt(p.targetRate)})`) +
    ` | ${fmt(p.total)} done: +${fmt(p.committed.insert)} ~${fmt(p.committed.update)} -${fmt(p.committed.delete)}` +
    ` | errors ${fmt(p.errors)} | in flight ${p.inFlight}${behind}`
  );
}

export function summaryLines(s: LoadSummary): string[] {
  const ms = (v: number) => (v < 1 ? v.toFixed(2) : v < 10 ? v.toFixed(1) : fmt(v));
  const lines = [
    `load: ${s.interrupted ? 'interrupted after' : 'ran'} ${s.elapsedSec.toFixed(1)} s: ${fmt(s.total)} changes committed ` +
      `(insert ${fmt(s.committed.insert)}, update ${fmt(s.committed.update)}, delete ${fmt(s.committed.delete)}), ` +
      `average ${fmt(s.averageRate)}/s${s.targetRate === Infinity ? '' : ` of ${fmt(s.targetRate)}/s requested`}`,
    `load: commit latency p50 ${ms(s.latencyMs.p50)} ms, p95 ${ms(s.latencyMs.p95)} ms, p99 ${ms(s.latencyMs.p99)} ms, max ${ms(s.latencyMs.max)} ms` +
      ` (${s.settings.connections} connections × ${s.settings.pipeline} in flight, tx size ${s.settings.txSize}, seed ${s.settings.seed})`,
  ];
  if (s.substituted > 0) lines.push(`load: ${fmt(s.substituted)} updates/deletes became inserts because no idle order was available`);
  if (s.vanished > 0) lines.push(`load: ${fmt(s.vanished)} updates/deletes found their order already deleted by someone else`);
  if (s.errors > 0) {
    lines.push(`load: ${fmt(s.errors)} changes failed:`);
    for (const e of s.errorSamples) lines.push(`  ${fmt(e.count)} × ${e.message}`);
  }
  if (!s.reachedRate && !s.interrupted) {
    lines.push(
      `load: could NOT reach ${fmt(s.targetRate)} changes/s: averaged ${fmt(s.averageRate)}/s` +
        (s.skipped > 0 ? `, ${fmt(s.skipped)} changes skipped because all in-flight slots stayed busy` : '') +
        ` — the database (or this machine) is the limit; more --connections/--pipeline or a larger --tx-size may help`,
    );
  } else if (!s.interrupted && s.targetRate !== Infinity) {
    lines.push(`load: reached the requested rate (${fmt(s.averageRate)}/s of ${fmt(s.targetRate)}/s)`);
  }
  return lines;
}

if (require.main === module) runMain('load', main);
