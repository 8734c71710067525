// Extra processor instances and connectors that a test starts for itself and removes after.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { REPO, source, sourceAdmin, stackEnv, waitFor } from './stack';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface ProcessorHandle {
  proc: ChildProcess;
  url: string;
  logFile: string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `node dist/processor/src/main.js` with the stack's env plus overrides; waits for /health. */
export async function startProcessor(name: string, overrides: Record<string, string>, waitHealthy = true): Promise<ProcessorHandle> {
  const port = await freePort();
  // CONNECT_URL is in the stack's env: like the stack's processor (infra/processor.sh), follow only
  // the stack's connector, not the connectors other tests register for themselves.
  const env = { ...process.env, ...stackEnv(), PROCESSOR_CONNECTORS: 'orders-source', PROCESSOR_PORT: String(port), ...overrides };
  const logFile = path.join(stackEnv().LOG_DIR, `e2e-${name}.log`);
  const out = fs.openSync(logFile, 'a');
  const proc = spawn('node', [path.join(REPO, 'dist/processor/src/main.js')], { cwd: REPO, env, stdio: ['ignore', out, out] });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const handle: ProcessorHandle = {
    proc,
    url,
    logFile,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
  if (waitHealthy) {
    await waitFor(`processor ${name} healthy (log ${logFile})`, async () => {
      if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}`);
      const res = await fetch(`${url}/health`).catch(() => null);
      return res?.ok ?? false;
    }, 60_000, 200);
  }
  return handle;
}

async function connect(method: string, p: string, body?: unknown): Promise<Response> {
  return fetch(`${stackEnv().CONNECT_URL}${p}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Registers a connector that copies the orders connector's settings with the given overrides. */
export async function registerConnector(name: string, overrides: Record<string, string>): Promise<void> {
  const base = await (await connect('GET', '/connectors/orders-source/config')).json() as Record<string, string>;
  const config = { ...base, name, ...overrides };
  await waitFor(`connector ${name} accepted`, async () => {
    const res = await connect('PUT', `/connectors/${name}/config`, config);
    if (res.status === 409) return false; // rebalance in progress: try again
    if (!res.ok) throw new Error(`PUT /connectors/${name}/config answered ${res.status}: ${await res.text()}`);
    return true;
  }, 60_000, 500);
  await waitFor(`connector ${name} RUNNING`, async () => {
    const res = await connect('GET', `/connectors/${name}/status`);
    if (!res.ok) return false;
    const s = await res.json() as any;
    if (s.tasks?.some((t: any) => t.state === 'FAILED')) throw new Error(`task failed: ${s.tasks[0].trace?.slice(0, 500)}`);
    return s.connector?.state === 'RUNNING' && s.tasks?.length > 0 && s.tasks.every((t: any) => t.state === 'RUNNING');
  }, 60_000, 500);
}

export async function deleteConnector(name: string): Promise<void> {
  await waitFor(`connector ${name} deleted`, async () => {
    const res = await connect('DELETE', `/connectors/${name}`);
    return res.ok || res.status === 404;
  }, 30_000, 500);
}

export interface CapturedTable {
  /** Topic prefix of the table's own connector: its topic is `<prefix>.public.<table>`. */
  prefix: string;
  processor: ProcessorHandle;
  /** Stops the processor, removes the connector, its slot and its publication. */
  teardown(): Promise<void>;
}

/**
 * Captures an existing source table with a connector of its own (initial snapshot, own slot
 * and publication) and loads it with a processor instance of its own, so a test can alter the
 * table freely without touching `orders` and its connector.
 */
export async function captureTable(table: string, tag: string): Promise<CapturedTable> {
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const prefix = `${tag}${suffix}`;
  const connector = `${tag}-${suffix}`;
  const slot = `${tag}_slot_${suffix}`;
  const publication = `${tag}_pub_${suffix}`;
  await sourceAdmin().query(`GRANT SELECT ON ${table} TO debezium`);
  await source().query(`CREATE PUBLICATION ${publication} FOR TABLE ${table}`);
  await registerConnector(connector, {
    'topic.prefix': prefix,
    'table.include.list': `public.${table}`,
    'publication.name': publication,
    'publication.autocreate.mode': 'disabled',
    'slot.name': slot,
    'snapshot.mode': 'initial',
  });
  const processor = await startProcessor(`${tag}-${suffix}`, {
    PROCESSOR_TOPICS: `${prefix}.public.${table}`, PROCESSOR_GROUP_ID: `e2e-${tag}-${suffix}`,
    WAREHOUSE_HOME_PREFIX: prefix, // the table keeps its plain name: <table>_fact, <table>_latest
  });
  return {
    prefix,
    processor,
    async teardown() {
      await processor.stop();
      await deleteConnector(connector).catch(() => undefined);
      await waitFor(`slot ${slot} dropped`, async () => {
        await sourceAdmin().query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]);
        return (await sourceAdmin().query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rowCount === 0;
      }, 30_000, 500).catch(() => undefined);
      await source().query(`DROP PUBLICATION IF EXISTS ${publication}`).catch(() => undefined);
    },
  };
}
