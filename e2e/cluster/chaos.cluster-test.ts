// The cluster tier (make test-cluster): a cluster of its own — 3 KRaft brokers, 2 Connect workers,
// 2 processors — on its own ports and data directory; its topology as make status reports it;
// make chaos against it (each fault under load, make verify exact after each, no change twice in
// the history); make down leaves no process behind.
import * as fs from 'fs';
import * as path from 'path';
import { ConfigResourceTypes, logLevel } from 'kafkajs';
import { kafkaClient } from '../../processor/src/kafka-options';
import { BASE, DATA_DIR, capture, clusterStackEnv, livePids, processesNamingDataDir, run } from './cluster-lib';
import { authHeaders, credentialsFromEnv } from '../../processor/src/rest-auth';

const STEPS = ['broker-leader', 'broker-controller', 'connect-worker', 'processor', 'rolling-brokers'];

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
      const status = await capture(['bash', 'infra/with-env.sh', 'node', 'infra/cluster-status.js', bootstrap, 'cdc-warehouse', '--json']);
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

    // As the admin user when the cluster is secured (make env).
    const kafka = kafkaClient({ clientId: 'cluster-test', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING }, clusterStackEnv());
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
    const connectHeaders = () => authHeaders(credentialsFromEnv(clusterStackEnv(), 'CONNECT'));
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
