// pgbench: its output parsed (pure), the shape of the source-cost figures, and how it is run.
import { spawn } from 'child_process';

export interface PgbenchRun {
  tps: number;
  transactions: number;
  failed: number;
  latencyAvgMs: number;
  durationSec: number;
  /** The machine's busy share (all cores) during the run, when measured. */
  machineBusy?: number;
}

export interface SourceCost {
  settings: { scale: number; clients: number; threads: number; durationSec: number; captureRate: number; holdSec: number; slot: string };
  /** TPS of pgbench (in its own database on the source cluster) in three states of the pipeline. */
  runs: {
    captureStopped: PgbenchRun | null;
    captureRunning: PgbenchRun | null;
    processorStopped: PgbenchRun | null;
  };
  /** What the load generator offers against the source alone: capture stopped, no consumer, no pgbench. */
  generatorAlone: { rate: number; durationSec: number; txSize: number; connections: number; pipeline: number } | null;
  /** Changes/s the load generator committed on the captured table beside pgbench, per run. */
  capturedRates: Record<string, number>;
  wal: {
    holdSec: number;
    /** pg_current_wal_lsn() - restart_lsn of Debezium's slot: WAL the source must keep. */
    maxRetainedBytes: number;
    /** pg_current_wal_lsn() - confirmed_flush_lsn: WAL not yet confirmed by Debezium. */
    maxUnconfirmedBytes: number;
    endRetainedBytes: number;
    /** Change events waiting in Kafka for the processor when it was started again. */
    backlogMessages: number;
    /** From the processor's restart until it had stored the backlog. */
    drainSec: number;
    drainRate: number;
    caughtUp: boolean;
  } | null;
}

/** The figures of one pgbench run from its report (PostgreSQL 12 to 17 wording). */
export function parsePgbench(out: string): PgbenchRun {
  const pick = (re: RegExp): number => {
    const m = re.exec(out);
    return m ? Number(m[1]) : NaN;
  };
  // "tps = 3818.74 (without initial connection time)" (14+); older: "(excluding connections establishing)".
  let tps = pick(/^tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/m);
  if (Number.isNaN(tps)) tps = pick(/^tps = ([\d.]+)/m);
  if (Number.isNaN(tps)) throw new Error(`no "tps = " line in pgbench's output: ${out.slice(-400)}`);
  return {
    tps,
    transactions: pick(/^number of transactions actually processed: (\d+)/m),
    failed: pick(/^number of failed transactions: (\d+)/m) || 0,
    latencyAvgMs: pick(/^latency average = ([\d.]+) ms/m),
    durationSec: pick(/^duration: (\d+) s/m),
  };
}

export interface PgbenchTarget {
  bin: string;
  host: string;
  port: number;
  user: string;
  password: string;
  db: string;
}

function run(t: PgbenchTarget, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(t.bin, [...args, '-h', t.host, '-p', String(t.port), '-U', t.user, t.db], {
      env: { ...process.env, PGPASSWORD: t.password, PGAPPNAME: 'cdc-bench-pgbench' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${t.bin}: ${e.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`pgbench ${args.join(' ')} exited with ${code}: ${out.slice(-600)}`));
    });
  });
}

/** pgbench -i: the TPC-B-like tables at `scale` (100,000 accounts per unit). */
export async function pgbenchInit(t: PgbenchTarget, scale: number): Promise<void> {
  await run(t, ['-i', '-q', '-s', String(scale)], 600_000);
}

export async function pgbenchRun(t: PgbenchTarget, o: { clients: number; threads: number; durationSec: number }): Promise<PgbenchRun> {
  const out = await run(t, ['-n', '-c', String(o.clients), '-j', String(o.threads), '-T', String(o.durationSec)], (o.durationSec + 120) * 1000);
  return parsePgbench(out);
}
