// Crashes during load lose nothing and double nothing: after each disruption `make verify`
// (seed/verify.ts) must find source and warehouse identical and every change in the history once.
// Runs last (see lib/sequencer.js): it kills components that other tests rely on.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { closeAll, REPO, run, stackEnv, warehouse, waitFor } from './lib/stack';
import { startProcessor } from './lib/processes';
import { status } from './lib/connect';

afterAll(closeAll);

interface Done { code: number | null; output: string }

function node(script: string, args: string[]): { done: Promise<Done> } {
  const child = spawn('node', [path.join(REPO, 'dist/seed', script), ...args], { cwd: REPO, env: { ...process.env, ...stackEnv() } });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return { done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, output }))) };
}

const load = (seconds: number, seed: number) => node('load.js', ['--rate', '300', '--duration', String(seconds), '--seed', String(seed)]);

async function verify(): Promise<string> {
  const r = await node('verify.js', ['--timeout', '180', '--allow-rejected']).done;
  if (r.code !== 0) throw new Error(`make verify failed (exit ${r.code}):\n${r.output.slice(-3000)}`);
  return r.output.trim().split('\n').pop()!;
}

const pidOf = (component: string) => Number(fs.readFileSync(path.join(stackEnv().DATA_DIR, 'run', `${component}.pid`), 'utf8').trim());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function duplicateFacts(): Promise<number> {
  const r = await warehouse().query(
    'SELECT count(*)::int AS n FROM (SELECT 1 FROM orders_fact GROUP BY source_lsn, op, order_id HAVING count(*) > 1) d');
  return r.rows[0].n;
}

/** Debezium's task must still be RUNNING (a FAILED task stays failed until restarted by hand). */
async function captureRunning(): Promise<void> {
  const s = await status('orders-source');
  if (!s || s.connector !== 'RUNNING' || !s.tasks.length || s.tasks.some((t) => t !== 'RUNNING')) {
    throw new Error(`capture stopped: connector ${s?.connector}, tasks ${s?.tasks.join(',')}\n${s?.trace.slice(0, 1500)}`);
  }
}

async function processorHealthy(): Promise<void> {
  await waitFor('the processor healthy', async () => (await fetch(`${stackEnv().PROCESSOR_URL}/health`).catch(() => null))?.ok ?? false, 60_000, 200);
}

describe('recovery under load', () => {
  it('kill -9 of the processor mid-batch: no loss, no duplicate', async () => {
    const l = load(20, 101);
    await sleep(6_000);
    process.kill(pidOf('processor'), 'SIGKILL');
    await sleep(2_000);
    run('bash', ['infra/processor.sh', 'start'], 120_000);
    await processorHealthy();
    const loaded = await l.done;
    expect(loaded.code).toBe(0);
    console.log(`after kill -9 of the processor: ${await verify()}`);
    expect(await duplicateFacts()).toBe(0);
  });

  it('Kafka Connect killed and restarted: Debezium re-sends, the warehouse does not double', async () => {
    const before = await warehouse().query('SELECT count(*)::int AS n FROM orders_fact');
    const l = load(25, 202);
    await sleep(7_000);
    process.kill(pidOf('connect'), 'SIGKILL');
    await sleep(2_000);
    run('bash', ['infra/connect.sh', 'start'], 180_000);
    const loaded = await l.done;
    expect(loaded.code).toBe(0);
    console.log(`after kill -9 of Kafka Connect: ${await verify()}`);
    expect(await duplicateFacts()).toBe(0);
    const after = await warehouse().query('SELECT count(*)::int AS n FROM orders_fact');
    expect(after.rows[0].n).toBeGreaterThan(before.rows[0].n);
    const metrics = await (await fetch(`${stackEnv().PROCESSOR_URL}/metrics`)).text();
    const resent = /^cdc_events_duplicate_total\{table="orders"\} (\d+)/m.exec(metrics)?.[1] ?? '0';
    console.log(`re-sent events recognised and skipped so far: ${resent}`);
  });

  it('a second processor joins and leaves the consumer group during load: partitions shared, nothing doubled', async () => {
    const l = load(20, 303);
    await sleep(4_000);
    const logFile = path.join(stackEnv().LOG_DIR, 'e2e-second-instance.log');
    const from = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0; // the log is appended to
    const second = await startProcessor('second-instance', {});
    // Healthy is not yet in the group: the rebalance waits for the first member's next poll.
    await waitFor('partitions assigned to the second instance', async () => /partitions assigned/.test(fs.readFileSync(logFile, 'utf8').slice(from)), 90_000, 500);
    await sleep(3_000);
    expect(await second.stop('SIGTERM')).toBe(0);
    const loaded = await l.done;
    expect(loaded.code).toBe(0);
    console.log(`after a second instance joined and left: ${await verify()}`);
    expect(await duplicateFacts()).toBe(0);
  });

  // The registry keeps its schemas in the warehouse cluster. Before its pool validated
  // connections, every one left from before the restart answered 500 once, and Connect's
  // converter, refreshing its schema ids every 30 s, failed Debezium's task for good.
  it('the warehouse PostgreSQL restarted under load: capture keeps running, nothing lost or doubled', async () => {
    const l = load(50, 505);
    await sleep(5_000);
    await closeAll(); // this test's own sessions would end with the server
    run('bash', ['infra/pg.sh', 'warehouse', 'restart'], 120_000);
    const loaded = await l.done; // 45 s after the restart: the converters have refreshed by then
    expect(loaded.code).toBe(0);
    await captureRunning();
    console.log(`after a restart of the warehouse PostgreSQL: ${await verify()}`);
    expect(await duplicateFacts()).toBe(0);
  });

  it('the schema registry away for 45 s under load: the converters keep the schema ids they know', async () => {
    const l = load(55, 606);
    await sleep(5_000);
    run('bash', ['infra/registry.sh', 'stop'], 60_000);
    try {
      await sleep(45_000);
      await captureRunning();
    } finally {
      run('bash', ['infra/registry.sh', 'start'], 180_000);
    }
    const loaded = await l.done;
    expect(loaded.code).toBe(0);
    await captureRunning();
    console.log(`after the registry was away: ${await verify()}`);
    expect(await duplicateFacts()).toBe(0);
  });

  it('the warehouse refuses the processor for a while: it pauses, retries with backoff, then catches up', async () => {
    const health = `${stackEnv().PROCESSOR_URL}/health`;
    const l = load(20, 404);
    await sleep(5_000);
    try {
      await warehouse().query('ALTER ROLE processor NOLOGIN');
      await warehouse().query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'processor'");
      const down = await waitFor('the processor to report the warehouse failing', async () => {
        const r = await fetch(health);
        return r.status === 503 ? ((await r.json()) as any) : null;
      }, 30_000, 200);
      expect(down.warehouse).toMatch(/^failing since/);
      await sleep(5_000);
    } finally {
      await warehouse().query('ALTER ROLE processor LOGIN');
    }
    await processorHealthy();
    const loaded = await l.done;
    expect(loaded.code).toBe(0);
    console.log(`after a warehouse outage: ${await verify()}`);
    expect(await duplicateFacts()).toBe(0);
  });
});
