// What end-to-end tests share: the stack's endpoints (from `make env`), database clients,
// and bounded waiting. Tests run against the real stack started by `make up`.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { logLevel, type Kafka } from 'kafkajs';
import { Pool, types } from 'pg';
import { kafkaClient } from '../../processor/src/kafka-options';
import { authHeaders, credentialsFromEnv, type BasicCredentials } from '../../processor/src/rest-auth';

// Exactness: bigint (20) and numeric (1700) come back as strings, never JS numbers.
types.setTypeParser(20, (v) => v);
types.setTypeParser(1700, (v) => v);

export const REPO = path.resolve(__dirname, '../..');

export interface StackEnv {
  SOURCE_DATABASE_URL: string;
  SOURCE_ADMIN_URL: string;
  WAREHOUSE_DATABASE_URL: string;
  WAREHOUSE_ADMIN_URL: string;
  ANALYST_DATABASE_URL: string;
  KAFKA_BOOTSTRAP_SERVERS: string;
  CONNECT_URL: string;
  SCHEMA_REGISTRY_URL: string;
  PROCESSOR_URL: string;
  DATA_DIR: string;
  LOG_DIR: string;
  [key: string]: string;
}

let cached: StackEnv | null = null;

/** `make env`, parsed (KEY=value lines). */
export function stackEnv(): StackEnv {
  if (cached) return cached;
  const out = execFileSync('bash', [path.join(REPO, 'infra/env.sh')], { cwd: REPO, encoding: 'utf8' });
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');
  }
  cached = env as StackEnv;
  return cached;
}

/** A kafkajs client of the stack's Kafka, with its security settings (`make env`: the admin user when secured). */
export function stackKafka(clientId: string): Kafka {
  const env = stackEnv();
  return kafkaClient({ clientId, brokers: env.KAFKA_BOOTSTRAP_SERVERS.split(','), logLevel: logLevel.NOTHING }, env);
}

/** Connect's REST and the registry's credentials as `make env` prints them (SECURITY=on), else none. */
export const connectAuth = (): BasicCredentials | null => credentialsFromEnv(stackEnv(), 'CONNECT');
export const registryAuth = (): BasicCredentials | null => credentialsFromEnv(stackEnv(), 'SCHEMA_REGISTRY');
export const connectHeaders = (): Record<string, string> => authHeaders(connectAuth());
export const registryHeaders = (): Record<string, string> => authHeaders(registryAuth());

const pools = new Map<string, Pool>();

/** A small pool per URL, in UTC so instants print the same on every machine. */
export function db(url: string): Pool {
  let pool = pools.get(url);
  if (!pool) {
    pool = new Pool({ connectionString: url, max: 3, options: '-c TimeZone=UTC' });
    pools.set(url, pool);
  }
  return pool;
}

export const source = () => db(stackEnv().SOURCE_DATABASE_URL);
export const sourceAdmin = () => db(stackEnv().SOURCE_ADMIN_URL);
export const warehouse = () => db(stackEnv().WAREHOUSE_ADMIN_URL);
export const analyst = () => db(stackEnv().ANALYST_DATABASE_URL);

export async function closeAll(): Promise<void> {
  await Promise.all([...pools.values()].map((p) => p.end()));
  pools.clear();
}

/** Polls until `probe` returns a value that is not null/undefined/false, or fails after the bound. */
export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null && v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Runs a command from the repo root with the stack's env; returns its output, throws with it on failure. */
export function run(command: string, args: string[], timeoutMs = 300_000): string {
  return execFileSync(command, args, {
    cwd: REPO, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...stackEnv() },
  });
}
