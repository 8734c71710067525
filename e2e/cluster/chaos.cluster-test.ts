// The cluster tier (make test-cluster): a cluster of its own — 3 KRaft brokers, 2 Connect workers,
// 2 processors — on its own ports and data directory; its topology as make status reports it;
// make chaos against it (each fault under load, make verify exact after each, no change twice in
// the history); make down leaves no process behind.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { authHeaders, credentialsFromEnv } from '../../processor/src/rest-auth';

const REPO = path.resolve(__dirname, '../..');
const BASE = Number(process.env.TEST_CLUSTER_PORT_BASE ?? 40000);
const DATA_DIR = process.env.TEST_CLUSTER_DATA_DIR ?? path.join(REPO, '.data-cluster');
const STEPS = ['broker-leader', 'broker-controller', 'connect-worker', 'processor', 'rolling-brokers'];

// What make env exports for another stack (tests run under infra/with-env.sh) would make this
// cluster's components "external": only the cluster's own settings go to the scripts.
const INHERITED = /^(SOURCE_|WAREHOUSE_|ANALYST_|KAFKA_|CONNECT_|SCHEMA_REGISTRY|APICURIO_|PROCESSOR_|REGISTRY_|DEBEZIUM_|DATA_DIR|LOG_DIR|BI_|CHAOS_|.*_PASSWORD$|.*_USERNAME$)/;
function clusterEnv(): NodeJS.ProcessEnv {
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
function run(args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', args, { cwd: REPO, env: clusterEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => resolve(code));
  });
}

function capture(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    const p = spawn(args[0], args.slice(1), { cwd: REPO, env: clusterEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out }));
  });
}

/** The pids recorded by the scripts (one file per component and node) that are still alive. */
function livePids(): string[] {
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
function processesNamingDataDir(): string[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      return cmd.includes(`${DATA_DIR}/`) || cmd.includes(`:${DATA_DIR} `) ? [`${d}: ${cmd.slice(0, 120)}`] : [];
    } catch {
      return [];
    }
  });
}

const bootstrap = [0, 2, 4].map((i) => `127.0.0.1:${BASE + 9092 + i}`).join(',');

beforeAll(async () => {
  // A fresh cluster: whatever an earlier run left is stopped and deleted (only this test's directory).
  await run(['infra/down.sh']);
  fs.rmSync(DATA_DIR, { recursive: true, force: true });
  expect(await run(['infra/up.sh'])).toBe(0);
});

afterAll(async () => {
  // Safety net when a test failed before its own make down.
  if (livePids().length) await run(['infra/down.sh']);
});

describe('a cluster of 3 brokers, 2 Connect workers, 2 processors', () => {
  it('replicates every topic 3 times, needs 2 in sync, and shares the work', async () => {
    type Status = {
      brokers: Array<{ id: number }>;
      topics: Array<{ name: string; partitions: Array<{ partition: number; leader: number; replicas: number[]; isr: number[] }> }>;
      group: { state: string; members: Array<{ clientId: string; assignment: Record<string, number[]> }> };
    };
    // The second processor joins last: its rebalance may still be under way when make up returns.
    let s: Status | null = null;
    for (const end = Date.now() + 120_000; Date.now() < end; await new Promise((r) => setTimeout(r, 2000))) {
      const status = await capture(['node', 'infra/cluster-status.js', bootstrap, 'cdc-warehouse', '--json']);
      if (status.code !== 0) continue;
      s = JSON.parse(status.out) as Status;
      if (s.group.state === 'Stable' && s.group.members.length === 2) break;
    }
    if (!s) throw new Error('infra/cluster-status.js never answered');
    expect(s.brokers.map((b) => b.id)).toEqual([1, 2, 3]);
    for (const name of ['dbserver1.public.orders', 'dbserver1-signal', 'dbserver1.transaction', 'cdc-connect-configs', 'cdc-connect-offsets', 'cdc-connect-status']) {
      const t = s.topics.find((x) => x.name === name);
      expect(t).toBeDefined();
      for (const p of t!.partitions) {
        expect(p.replicas).toHaveLength(3);
        expect([...p.isr].sort()).toEqual([...p.replicas].sort());
      }
    }
    // Both processors in the one group, each with a partition of the change topic.
    expect(s.group.state).toBe('Stable');
    const owners = s.group.members.map((m) => [m.clientId, m.assignment['dbserver1.public.orders'] ?? []] as const);
    expect(owners.map(([c]) => c).sort()).toEqual(['cdc-processor-1', 'cdc-processor-2']);
    for (const [, parts] of owners) expect(parts.length).toBeGreaterThan(0);

    const kafka = new Kafka({ clientId: 'cluster-test', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'dbserver1.public.orders', configNames: ['min.insync.replicas'] }] });
      expect(cfg.resources[0].configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue).toBe('2');
    } finally {
      await admin.disconnect();
    }

    // The source task runs on one of the two workers; both answer for the group (a cluster is
    // secured: Connect's REST asks for the credentials make env prints).
    const envOut = await capture(['bash', 'infra/env.sh']);
    const clusterVars = Object.fromEntries(envOut.out.split('\n').map((l) => /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l)).filter((m) => m).map((m) => [m![1], m![2].replace(/^'(.*)'$/, '$1')]));
    const connectHeaders = () => authHeaders(credentialsFromEnv(clusterVars, 'CONNECT'));
    for (const port of [BASE + 8083, BASE + 8084]) {
      const res = await fetch(`http://127.0.0.1:${port}/connectors/orders-source/status`, { headers: connectHeaders() });
      expect(res.status).toBe(200);
      const st = (await res.json()) as { tasks: Array<{ state: string; worker_id: string }> };
      expect(st.tasks[0].state).toBe('RUNNING');
      expect([`127.0.0.1:${BASE + 8083}`, `127.0.0.1:${BASE + 8084}`]).toContain(st.tasks[0].worker_id);
    }
  });

  it('make chaos: after each fault under load the warehouse is exact and no change is twice in the history', async () => {
    const results = path.join(DATA_DIR, 'chaos', 'results.json');
    fs.rmSync(results, { force: true });
    const code = await run(['infra/chaos.sh']);
    const steps = JSON.parse(fs.readFileSync(results, 'utf8')) as Array<{ step: string; verify_exact: boolean; duplicates: number; during: { changes: number } }>;
    expect(steps.map((r) => r.step)).toEqual(STEPS);
    for (const r of steps) {
      expect({ step: r.step, exact: r.verify_exact, duplicates: r.duplicates }).toEqual({ step: r.step, exact: true, duplicates: 0 });
      // The load ran through the fault: there was something to lose.
      expect(r.during.changes).toBeGreaterThan(0);
    }
    expect(code).toBe(0);
  });

  it('make down stops every node and leaves no process behind', async () => {
    expect(await run(['infra/down.sh'])).toBe(0);
    expect(livePids()).toEqual([]);
    expect(processesNamingDataDir()).toEqual([]);
  });
});
