// What capture costs the source: pgbench (TPC-B like, in its own database bench_pgbench on the
// source cluster, dropped afterwards) with Debezium's connector stopped, running with the
// pipeline keeping up, and running with our processor stopped; meanwhile the load generator
// writes captured changes at a steady rate, so that capture has work to do. With the processor
// stopped, the WAL held by Debezium's slot is sampled, then the processor is started again and
// the time it takes to store the backlog is measured.
import type { Client } from 'pg';
import { runLoad } from '../../seed/lib/workload';
import { pgbenchInit, pgbenchRun, type PgbenchRun, type PgbenchTarget, type SourceCost } from './pgbench';
import { MachineLoad } from './proc';
import type { Admin } from 'kafkajs';
import { endOffsets, type Ours } from './systems';
import { ConnectRest, log, sleep, urlParts, waitFor } from './util';

export const PGBENCH_DB = 'bench_pgbench';

export interface SourceCostOptions {
  srcAdmin: Client;
  sourceAdminUrl: string;
  /** The role that writes public.orders (the load generator's). */
  sourceUrl: string;
  connectUrl: string;
  connector: string;
  ours: Ours;
  kafka: Admin;
  pgbenchBin: string;
  scale: number;
  clients: number;
  threads: number;
  durationSec: number;
  /** Captured changes/s written beside pgbench (0: none). */
  captureRate: number;
  /** Seconds the processor stays stopped (at least the pgbench run). */
  holdSec: number;
  catchupSec: number;
  /** The generator alone against the source while capture is stopped (e2e settings; durationSec 0: not measured). */
  offer?: { durationSec: number; txSize: number; connections: number; pipeline: number };
}

async function connectorState(rest: ConnectRest, name: string): Promise<{ state: string; tasks: string[]; trace: string }> {
  const r = await rest.call('GET', `/connectors/${name}/status`);
  if (r.status !== 200) return { state: '?', tasks: [], trace: '' };
  return {
    state: r.json.connector.state,
    tasks: r.json.tasks.map((t: { state: string }) => t.state),
    trace: r.json.tasks.map((t: { trace?: string }) => t.trace ?? '').join('\n'),
  };
}

/** PUT /connectors/<name>/stop: the connector and its tasks shut down (offsets kept). */
export async function stopConnector(rest: ConnectRest, name: string): Promise<void> {
  await rest.must('PUT', `/connectors/${name}/stop`);
  const ok = await waitFor(async () => (await connectorState(rest, name)).state === 'STOPPED', 60_000, 300);
  if (!ok) throw new Error(`connector ${name} did not stop within 60 s`);
}

/** PUT /connectors/<name>/resume, then its task RUNNING and still running a few seconds later. */
export async function resumeConnector(rest: ConnectRest, name: string): Promise<void> {
  await rest.must('PUT', `/connectors/${name}/resume`);
  await rest.waitState(name, 'RUNNING');
  await sleep(3000); // a failure at start shows after a moment
  const s = await connectorState(rest, name);
  if (s.tasks.includes('FAILED')) throw new Error(`connector ${name} FAILED after resume: ${s.trace.slice(0, 1200)}`);
}

/** Set while the source connector is stopped by this phase: an interrupted run resumes it (restoreSource). */
let stoppedConnector: { rest: ConnectRest; name: string } | null = null;

/** After an interruption: the source connector running again, the pgbench database gone. */
export async function restoreSource(srcAdmin: Client): Promise<void> {
  const s = stoppedConnector;
  if (s) {
    await s.rest.must('PUT', `/connectors/${s.name}/resume`).catch((e) => log(`WARNING: resuming ${s.name}: ${(e as Error).message}`));
    stoppedConnector = null;
  }
  await srcAdmin.query(`DROP DATABASE IF EXISTS ${PGBENCH_DB} WITH (FORCE)`).catch(() => undefined);
}

export async function measureSourceCost(o: SourceCostOptions): Promise<SourceCost> {
  const rest = new ConnectRest(o.connectUrl);
  const cfg = await rest.must('GET', `/connectors/${o.connector}/config`);
  const slot: string = cfg['slot.name'] ?? 'debezium';
  const a = urlParts(o.sourceAdminUrl);
  const target: PgbenchTarget = { bin: o.pgbenchBin, host: a.host, port: a.port, user: a.user, password: a.password, db: PGBENCH_DB };
  const result: SourceCost = {
    settings: { scale: o.scale, clients: o.clients, threads: o.threads, durationSec: o.durationSec, captureRate: o.captureRate, holdSec: o.holdSec, slot },
    runs: { captureStopped: null, captureRunning: null, processorStopped: null },
    capturedRates: {},
    generatorAlone: null,
    wal: null,
  };

  // One measurement: pgbench for durationSec, the captured load beside it for `loadSec`.
  const machine = new MachineLoad();
  const measure = async (label: keyof SourceCost['runs'], loadSec = o.durationSec): Promise<PgbenchRun> => {
    machine.take();
    const [bench, load] = await Promise.all([
      pgbenchRun(target, o),
      o.captureRate > 0
        ? runLoad({ connectionString: o.sourceUrl, rate: o.captureRate, durationSec: loadSec, applicationName: 'cdc-bench-load' })
        : Promise.resolve(null),
    ]);
    bench.machineBusy = machine.take();
    result.runs[label] = bench;
    if (load) result.capturedRates[label] = load.averageRate;
    log(`  pgbench, ${label}: ${Math.round(bench.tps).toLocaleString('en-US')} TPS (latency ${bench.latencyAvgMs.toFixed(2)} ms)` +
      `${load ? `; ${Math.round(load.averageRate).toLocaleString('en-US')} captured changes/s beside it` : ''}; machine ${Math.round(bench.machineBusy * 100)}% busy`);
    return bench;
  };
  // Caught up: Debezium done publishing (the topic's end unchanged for 2 s: after a resume it
  // publishes a backlog) and nothing waiting for the processor.
  const caughtUp = async (what: string) => {
    let last = -1n;
    const ok = await waitFor(async () => {
      const end = [...(await endOffsets(o.kafka)).values()].reduce((x, y) => x + y, 0n);
      const still = end === last;
      last = end;
      return still && (await o.ours.lag()) === 0n;
    }, o.catchupSec * 1000, 2000);
    if (!ok) log(`WARNING: the processor did not catch up within ${o.catchupSec} s after ${what}`);
  };

  let connectorStopped = false;
  let processorStopped = false;
  await o.srcAdmin.query(`DROP DATABASE IF EXISTS ${PGBENCH_DB} WITH (FORCE)`);
  await o.srcAdmin.query(`CREATE DATABASE ${PGBENCH_DB}`);
  try {
    const t = Date.now();
    await pgbenchInit(target, o.scale);
    log(`  pgbench -i -s ${o.scale} in ${((Date.now() - t) / 1000).toFixed(1)} s (database ${PGBENCH_DB} on the source cluster)`);

    // 1. Capture stopped: Debezium's connector stopped (PUT /stop), the captured load still written.
    connectorStopped = true;
    stoppedConnector = { rest, name: o.connector };
    await stopConnector(rest, o.connector);
    await measure('captureStopped');
    if (o.offer && o.offer.durationSec > 0) {
      // The same generator as end to end, alone against the source: its ceiling, not the pipeline's.
      const { durationSec, txSize, connections, pipeline } = o.offer;
      const alone = await runLoad({ connectionString: o.sourceUrl, rate: Infinity, durationSec, txSize, connections, pipeline, applicationName: 'cdc-bench-load' });
      result.generatorAlone = { rate: alone.averageRate, durationSec, txSize, connections, pipeline };
      log(`  the load generator alone against the source (capture stopped): ${Math.round(alone.averageRate).toLocaleString('en-US')} changes/s ` +
        `(${txSize} per transaction, ${connections} connections × ${pipeline} in flight, ${durationSec} s)`);
    }
    await resumeConnector(rest, o.connector);
    connectorStopped = false;
    stoppedConnector = null;
    await caughtUp('the connector was resumed');

    // 2. Capture running, the pipeline keeping up.
    await measure('captureRunning');
    await caughtUp('pgbench with capture');

    // 3. Capture running, our processor stopped for holdSec: the WAL the slot holds, then the backlog's drain.
    await o.ours.pause();
    processorStopped = true;
    const samples: Array<{ retained: number; unconfirmed: number }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const r = await o.srcAdmin.query(
          `SELECT (pg_current_wal_lsn() - restart_lsn)::float8 AS retained, (pg_current_wal_lsn() - confirmed_flush_lsn)::float8 AS unconfirmed
           FROM pg_replication_slots WHERE slot_name = $1`,
          [slot],
        ).catch(() => null);
        if (r?.rows[0]) samples.push({ retained: Number(r.rows[0].retained), unconfirmed: Number(r.rows[0].unconfirmed) });
        await sleep(1000);
      }
    })();
    const holdStart = Date.now();
    await measure('processorStopped', Math.max(o.durationSec, o.holdSec));
    const left = o.holdSec * 1000 - (Date.now() - holdStart);
    if (left > 0) await sleep(left);
    const holdSec = (Date.now() - holdStart) / 1000;
    sampling = false;
    await sampler;
    const backlog = Number(await o.ours.lag());
    const t0 = Date.now();
    await o.ours.resume();
    processorStopped = false;
    const done = await waitFor(async () => (await o.ours.lag()) === 0n, o.catchupSec * 1000, 200);
    const drainSec = (Date.now() - t0) / 1000;
    result.wal = {
      holdSec,
      maxRetainedBytes: Math.max(0, ...samples.map((s) => s.retained)),
      maxUnconfirmedBytes: Math.max(0, ...samples.map((s) => s.unconfirmed)),
      endRetainedBytes: samples.length ? samples[samples.length - 1].retained : NaN,
      backlogMessages: backlog,
      drainSec,
      drainRate: backlog / drainSec,
      caughtUp: Boolean(done),
    };
    log(`  processor stopped ${holdSec.toFixed(0)} s: slot ${slot} held at most ${(result.wal.maxRetainedBytes / 2 ** 20).toFixed(1)} MB of WAL ` +
      `(${(result.wal.maxUnconfirmedBytes / 2 ** 20).toFixed(1)} MB unconfirmed); backlog of ${backlog.toLocaleString('en-US')} messages stored ` +
      `${done ? `in ${drainSec.toFixed(1)} s after the restart (${Math.round(result.wal.drainRate).toLocaleString('en-US')}/s, start-up included)` : `NOT within ${o.catchupSec} s`}`);
  } finally {
    if (connectorStopped) {
      await resumeConnector(rest, o.connector).catch((e) => log(`WARNING: resuming ${o.connector}: ${(e as Error).message}`));
      stoppedConnector = null;
    }
    if (processorStopped) await o.ours.resume().catch((e) => log(`WARNING: restarting the benchmark's processor: ${(e as Error).message}`));
    await o.srcAdmin.query(`DROP DATABASE IF EXISTS ${PGBENCH_DB} WITH (FORCE)`).catch((e) => log(`WARNING: dropping ${PGBENCH_DB}: ${(e as Error).message}`));
  }
  return result;
}
