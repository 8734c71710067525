// What the cluster tier's files share: the cluster's own ports, data directory and environment,
// running the repository's scripts against it, and what is left running.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const REPO = path.resolve(__dirname, '../..');
// Every port of the cluster stays below Linux's ephemeral range (32768 and up): a port there may be
// the local end of some client's connection at the moment a component binds it (seen: 49090).
export const BASE = Number(process.env.TEST_CLUSTER_PORT_BASE ?? 20000);
export const DATA_DIR = process.env.TEST_CLUSTER_DATA_DIR ?? path.join(REPO, '.data-cluster');

// What make env exports for another stack (tests run under infra/with-env.sh) would make this
// cluster's components "external": only the cluster's own settings go to the scripts.
const INHERITED = /^(SOURCE_|WAREHOUSE_|ANALYST_|KAFKA_|CONNECT_|SCHEMA_REGISTRY|APICURIO_|PROCESSOR_|REGISTRY_|DEBEZIUM_|DATA_DIR|LOG_DIR|BI_|CHAOS_|.*_PASSWORD$|.*_USERNAME$)/;
export function clusterEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!INHERITED.test(k)) env[k] = v;
  return {
    ...env,
    DATA_DIR,
    SOURCE_PG_PORT: String(BASE + 5432),
    WAREHOUSE_PG_PORT: String(BASE + 5433),
    KAFKA_PORT: String(BASE + 9092), // brokers on +9092, +9094, +9096; controllers one above each
    KAFKA_CONTROLLER_PORT: String(BASE + 9093),
    REGISTRY_PORT: String(BASE + 8080),
    REGISTRY_MGMT_PORT: String(BASE + 9000),
    CONNECT_PORT: String(BASE + 8083), // workers on +8083, +8084
    PROCESSOR_PORT: String(BASE + 8090), // processors on +8090, +8091
    BI_PORT: String(BASE + 8088),
    KAFKA_BROKERS: '3',
    CONNECT_WORKERS: '2',
    PROCESSORS: '2',
    RATE: process.env.CHAOS_RATE ?? '100',
  };
}

/** Runs a script of the repository with the cluster's environment; its output goes to the terminal. */
export function run(args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', args, { cwd: REPO, env: clusterEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => resolve(code));
  });
}

export function capture(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    const p = spawn(args[0], args.slice(1), { cwd: REPO, env: clusterEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out }));
  });
}

/** The pids recorded by the scripts (one file per component and node) that are still alive. */
export function livePids(): string[] {
  const dir = path.join(DATA_DIR, 'run');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.pid')).flatMap((f) => {
    const pid = Number(fs.readFileSync(path.join(dir, f), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return [];
    try {
      process.kill(pid, 0);
      return [`${f}: ${pid}`];
    } catch {
      return [];
    }
  });
}

/** Processes whose command line names this data directory (the JVMs' markers, PostgreSQL's -D). */
export function processesNamingDataDir(): string[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      return cmd.includes(`${DATA_DIR}/`) || cmd.includes(`:${DATA_DIR} `) ? [`${d}: ${cmd.slice(0, 120)}`] : [];
    } catch {
      return [];
    }
  });
}

/** The cluster's `make env` plus the passwords, as infra/with-env.sh exports them (the Kafka users' too). */
export function clusterStackEnv(env: NodeJS.ProcessEnv = clusterEnv()): Record<string, string> {
  const out = execFileSync('bash', [path.join(REPO, 'infra/with-env.sh'), 'env', '-0'], { cwd: REPO, env, encoding: 'utf8' });
  const vars: Record<string, string> = {};
  for (const entry of out.split('\0')) {
    const i = entry.indexOf('=');
    if (i > 0) vars[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return vars;
}
