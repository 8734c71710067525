// Extra processor instances and connectors that a test starts for itself and removes after.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { REPO, stackEnv, waitFor } from './stack';

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
  const env = { ...process.env, ...stackEnv(), PROCESSOR_PORT: String(port), ...overrides };
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
