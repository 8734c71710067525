// Extra processor instances and connectors that a test starts for itself and removes after.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { REPO, connectHeaders, source, sourceAdmin, stackEnv, stackKafka, waitFor, warehouse } from './stack';

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
  /** Stops it (SIGKILL by default: no shutdown, a crash) and starts the same instance again
   *  (same name, settings and log file; a new port), waiting for /health. */
  restart(signal?: NodeJS.Signals): Promise<ProcessorHandle>;
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
    async restart(signal = 'SIGKILL') {
      await handle.stop(signal);
      return startProcessor(name, overrides, waitHealthy);
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
    headers: { ...connectHeaders(), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Registers a connector that copies the orders connector's settings with the given overrides. */
export async function registerConnector(name: string, overrides: Record<string, string>): Promise<void> {
  const base = await (await connect('GET', '/connectors/orders-source/config')).json() as Record<string, string>;
  // A test's connector is not for the user's warehouse: the stack's processor leaves it alone.
  const config = { ...base, name, 'cdc.warehouse.follow': 'false', ...overrides };
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
  /** The table's own connector, replication slot and publication. */
  connector: string;
  slot: string;
  publication: string;
  processor: ProcessorHandle;
  /** Stops the processor, removes the connector, its slot and its publication. */
  teardown(): Promise<void>;
}

/**
 * Captures an existing source table with a connector of its own (initial snapshot, own slot
 * and publication) and loads it with a processor instance of its own, so a test can alter the
 * table freely without touching `orders` and its connector.
 */
export async function captureTable(table: string, tag: string, opts: { processorEnv?: Record<string, string>; connector?: Record<string, string> } = {}): Promise<CapturedTable> {
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const prefix = `${tag}${suffix}`;
  const connector = `${tag}-${suffix}`;
  const slot = `${tag}_slot_${suffix}`;
  const publication = `${tag}_pub_${suffix}`;
  await sourceAdmin().query(`GRANT SELECT ON ${table} TO debezium`);
  await source().query(`CREATE PUBLICATION ${publication} FOR TABLE ${table}`);
  const topic = `${prefix}.public.${table}`;
  const group = `e2e-${tag}-${suffix}`;
  // Debezium creates the topic with the table's first event; an empty table has none yet.
  await createTopic(topic, 2);
  let processor: ProcessorHandle | null = null;
  const captured: CapturedTable = {
    prefix,
    connector,
    slot,
    publication,
    get processor() {
      return processor!;
    },
    async teardown() {
      await processor?.stop();
      await removeCapture({ connector, slot, publication });
      await dropWarehouseSide(table, [topic], group);
      await deleteTopics([topic]);
    },
  };
  try {
    await registerConnector(connector, {
      'topic.prefix': prefix,
      'table.include.list': `public.${table}`,
      'publication.name': publication,
      'publication.autocreate.mode': 'disabled',
      'slot.name': slot,
      'snapshot.mode': 'initial',
      ...opts.connector,
    });
    processor = await startProcessor(`${tag}-${suffix}`, {
      PROCESSOR_TOPICS: topic, PROCESSOR_GROUP_ID: group,
      WAREHOUSE_HOME_PREFIX: prefix, // the table keeps its plain name: <table>_fact, <table>_latest
      ...opts.processorEnv,
    });
  } catch (err) {
    // A test that fails to start must not leave a connector and a slot holding WAL behind.
    await captured.teardown();
    throw err;
  }
  return captured;
}

/** Removes what a test table left in the warehouse: its tables, time-travel objects, offsets and
 *  rejects, so that analysts (and `make verify`) never see test data. */
export async function dropWarehouseSide(table: string, topics: string[], group: string): Promise<void> {
  const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
  await warehouse().query(`DROP VIEW IF EXISTS ${q(`${table}_history`)}`).catch(() => undefined);
  await warehouse().query(`DROP FUNCTION IF EXISTS ${q(`${table}_as_of`)}(timestamptz)`).catch(() => undefined);
  await warehouse().query(`DROP TABLE IF EXISTS ${q(`${table}_fact`)}, ${q(`${table}_latest`)}, ${q(`${table}_truncates`)}`).catch(() => undefined);
  await warehouse().query('DELETE FROM cdc.captured_tables WHERE topic = ANY ($1)', [topics]).catch(() => undefined);
  await warehouse().query('DELETE FROM cdc.published_tables WHERE warehouse_table = $1', [table]).catch(() => undefined);
  // Events counted for the table's transactions (a test connector with transaction metadata).
  const parts = topics.map((t) => t.split('.')).filter((p) => p.length === 3);
  await warehouse().query(
    'DELETE FROM cdc.transaction_progress WHERE (topic_prefix, collection) IN (SELECT * FROM unnest($1::text[], $2::text[]))',
    [parts.map((p) => p[0]), parts.map((p) => `${p[1]}.${p[2]}`)]).catch(() => undefined);
  await warehouse().query('DELETE FROM cdc.offsets WHERE consumer_group = $1 OR topic = ANY ($2)', [group, topics]).catch(() => undefined);
  await warehouse().query('DELETE FROM cdc.rejected_events WHERE topic = ANY ($1)', [topics]).catch(() => undefined);
}

/** Removes a test source's transaction bookkeeping (END records, counts, watermark, captured
 *  and published tables) by its topic prefix, so that `pipeline_status` shows no test source. */
export async function dropSourceRecords(prefix: string): Promise<void> {
  for (const t of ['transactions', 'transaction_progress', 'consistency', 'captured_tables', 'published_tables']) {
    await warehouse().query(`DELETE FROM cdc.${t} WHERE topic_prefix = $1`, [prefix]).catch(() => undefined);
  }
}

/** Deletes test topics from Kafka (best effort: a broker that refuses is not the test's concern). */
export async function deleteTopics(topics: string[]): Promise<void> {
  const kafka = stackKafka('e2e-cleanup');
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const doomed = topics.filter((t) => existing.has(t));
    if (doomed.length) await admin.deleteTopics({ topics: doomed, timeout: 10_000 });
  } catch {
    // left for the broker's retention
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Who holds which partitions in a consumer group now: one entry per member (its member id, and
 *  its client id: PROCESSOR_CLIENT_ID for a processor), partitions as `topic:partition`, sorted.
 *  Empty while the group rebalances or has no member. A killed member stays listed until its
 *  session times out. */
export async function groupAssignment(group: string): Promise<{ memberId: string; clientId: string; partitions: string[] }[]> {
  const kafka = stackKafka('e2e-group');
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([group]);
    if (groups[0]?.state !== 'Stable') return [];
    return groups[0].members.map((m) => {
      const assigned = AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {};
      const partitions = Object.entries(assigned).flatMap(([t, ps]) => ps.map((p) => `${t}:${p}`)).sort();
      return { memberId: m.memberId, clientId: m.clientId, partitions };
    });
  } finally {
    await admin.disconnect();
  }
}

/** Creates a topic the way the connector would (its partitions), if it does not exist. */
export async function createTopic(topic: string, partitions: number): Promise<void> {
  const kafka = stackKafka('e2e-setup');
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** Removes a test's capture from the source side: its connector, then its replication slot
 *  (once the task has let go of it; a slot left behind would hold WAL for ever), its publication. */
export async function removeCapture(c: { connector?: string; slot: string; publication: string }): Promise<void> {
  if (c.connector) await deleteConnector(c.connector).catch(() => undefined);
  await waitFor(`slot ${c.slot} dropped`, async () => {
    await sourceAdmin().query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [c.slot]);
    return (await sourceAdmin().query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [c.slot])).rowCount === 0;
  }, 30_000, 500).catch(() => undefined);
  await sourceAdmin().query(`DROP PUBLICATION IF EXISTS ${c.publication}`).catch(() => undefined);
}
