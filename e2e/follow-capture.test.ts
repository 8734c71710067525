// The warehouse follows capture: a processor that knows Kafka Connect loads a table the moment
// it is added to the connector's table.include.list, with the rows it had before (an
// incremental snapshot the processor asks for through the connector's Kafka signal topic) and
// then its changes, while the other tables keep streaming. A table of the same name in another
// schema lands in a table of its own; a name collision is rejected with both topics named.
// Everything here is the test's own: tables, a schema, a connector with its slot, publication and
// signal topic, a processor following only that connector, and a scratch warehouse database.
import { Kafka, logLevel } from 'kafkajs';
import { Pool } from 'pg';
import { registerConnector, removeCapture, startProcessor, type ProcessorHandle } from './lib/processes';
import { closeAll, connectHeaders, source, sourceAdmin, stackEnv, stackKafka, waitFor } from './lib/stack';
import { scratchWarehouse, type Scratch } from '../processor/test/integration/scratch';

const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
const tag = `fc${suffix}`;
const prefix = tag;
const connector = `fc-${suffix}`;
const slot = `fc_slot_${suffix}`;
const publication = `fc_pub_${suffix}`;
const schema = `${tag}_inv`;
const A = `${tag}_orders`; // public: streams throughout
const B = `${tag}_items`; // public: has rows before it is added to capture
const C = `${schema}.${A}`; // same name as A, another schema
const D = `${schema}_${A}`; // public.<schema>_<A>: maps to the same warehouse name as C
const E = `${tag} Weird`; // a name Kafka does not take: Debezium's topic says ${tag}_Weird
const quotedE = `"${E}"`;
const signalTable = `${tag}_signal`;
const signalTopic = `${prefix}-signal`;

let wh: Scratch;
let whPool: Pool;
let processor: ProcessorHandle | null = null;
const kafka = stackKafka(`e2e-${tag}`);

const include = (...tables: string[]) => tables.map((t) => (t.includes('.') ? t : `public.${t}`)).join(',');
const connectorConfig = (tables: string[]) => ({
  'topic.prefix': prefix,
  'table.include.list': include(...tables),
  'publication.name': publication,
  'publication.autocreate.mode': 'disabled',
  'slot.name': slot,
  'snapshot.mode': 'initial',
  'signal.enabled.channels': 'source,kafka',
  'signal.kafka.topic': signalTopic,
  'signal.kafka.bootstrap.servers': stackEnv().KAFKA_BOOTSTRAP_SERVERS,
  'signal.data.collection': `public.${signalTable}`,
});

/** The source rows and the warehouse's current rows, both as sorted text, for an exact comparison. */
async function sourceRows(table: string): Promise<string[]> {
  return (await source().query(`SELECT id::text || '|' || coalesce(amount::text, '-') || '|' || coalesce(note, '-') AS r FROM ${table} ORDER BY id`)).rows.map((r) => r.r);
}
async function warehouseRows(table: string): Promise<string[]> {
  const exists = (await wh.admin.query('SELECT to_regclass($1) IS NOT NULL AS ok', [`"${table}_latest"`])).rows[0].ok;
  if (!exists) return [];
  return (await wh.admin.query(`SELECT id::text || '|' || coalesce(amount::text, '-') || '|' || coalesce(note, '-') AS r FROM "${table}_latest" ORDER BY id`)).rows.map((r) => r.r);
}
async function converged(sourceTable: string, warehouseTable: string): Promise<string[] | false> {
  const [s, w] = await Promise.all([sourceRows(sourceTable), warehouseRows(warehouseTable)]);
  return JSON.stringify(s) === JSON.stringify(w) ? s : false;
}

/** Changes the connector's include list through Connect's REST API, as a user would. */
async function capture(tables: string[]): Promise<void> {
  await registerConnector(connector, connectorConfig(tables));
}

/** Inserts into A every few milliseconds until stopped: the table that must never stop. */
function streamInto(table: string) {
  let stop = false;
  let next = 1000;
  const done = (async () => {
    while (!stop) {
      await source().query(`INSERT INTO ${table} (id, amount, note) VALUES ($1, $2, 'streamed')`, [next, `${next}.01`]);
      next++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return { async stop() { stop = true; await done; return next - 1000; } };
}

const processorEnv = () => ({
  WAREHOUSE_DATABASE_URL: wh.processorUrl,
  PROCESSOR_GROUP_ID: `e2e-${tag}`,
  PROCESSOR_CONNECTORS: connector, // only this test's connector
  WAREHOUSE_HOME_PREFIX: prefix, // so public tables keep their plain names here
  CONNECT_POLL_MS: '1000',
});

// The change topics loaded (a connector with transaction metadata adds <prefix>.transaction, metadata).
const health = async () => {
  const h = (await (await fetch(`${processor!.url}/health`)).json()) as { topics: string[] };
  return { ...h, topics: h.topics.filter((t) => !t.endsWith('.transaction')) };
};

beforeAll(async () => {
  wh = await scratchWarehouse();
  whPool = wh.admin;
  const owner = new URL(stackEnv().SOURCE_DATABASE_URL).username;
  await sourceAdmin().query(`CREATE SCHEMA ${schema} AUTHORIZATION ${owner}`);
  const table = (name: string) => `CREATE TABLE ${name} (id integer PRIMARY KEY, amount numeric(12,2), note text)`;
  for (const t of [A, B, C, D]) await source().query(table(t));
  await source().query(`CREATE TABLE ${signalTable} (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))`);
  await sourceAdmin().query(`GRANT USAGE ON SCHEMA ${schema} TO debezium`);
  await sourceAdmin().query(`GRANT SELECT ON ${A}, ${B}, ${C}, ${D} TO debezium`);
  await sourceAdmin().query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${signalTable} TO debezium`);
  await source().query(`INSERT INTO ${A} (id, amount, note) VALUES (1, 10.50, 'before capture')`);
  // B's rows exist long before B is captured: only a snapshot can bring them.
  await source().query(`INSERT INTO ${B} (id, amount, note) SELECT g, g * 1.25, 'old ' || g FROM generate_series(1, 500) g`);
  await source().query(`INSERT INTO ${C} (id, amount, note) VALUES (1, 0.01, 'inventory one'), (2, 99999999.99, 'inventory two')`);
  await source().query(`INSERT INTO ${D} (id, amount, note) VALUES (1, 5, 'collides')`);
  await source().query(`CREATE PUBLICATION ${publication} FOR TABLE ${A}, ${signalTable}`);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: signalTopic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  await capture([A]);
  processor = await startProcessor(`follow-${suffix}`, processorEnv());
});

afterAll(async () => {
  await processor?.stop();
  await removeCapture({ connector, slot, publication });
  await source().query(`DROP TABLE IF EXISTS ${A}, ${B}, ${D}, ${quotedE}, ${signalTable}`).catch(() => undefined);
  await sourceAdmin().query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  const admin = kafka.admin();
  await admin.connect().then(async () => {
    const mine = (await admin.listTopics()).filter((t) => t === prefix || t.startsWith(`${prefix}.`) || t.startsWith(`${prefix}-`) || t === `__debezium-heartbeat.${prefix}`);
    if (mine.length) await admin.deleteTopics({ topics: mine });
  }).catch(() => undefined).finally(() => admin.disconnect());
  await wh?.drop();
  await closeAll();
});

describe('the warehouse follows capture', () => {
  it('loads the first table of the connector', async () => {
    expect(await waitFor('A loaded', () => converged(A, A), 90_000, 250)).toEqual(['1|10.50|before capture']);
  });

  it('loads a table added to the include list whole (rows from before, then changes) while the first keeps streaming', async () => {
    const stream = streamInto(A);
    try {
      await waitFor('A streaming', async () => (await warehouseRows(A)).length > 3, 60_000, 100);
      await source().query(`ALTER PUBLICATION ${publication} ADD TABLE ${B}`);
      await capture([A, B]);
      const aWhenAdded = (await warehouseRows(A)).length;
      // Changes to B while its snapshot may be running, and an insert: the end state must be exact.
      await source().query(`UPDATE ${B} SET note = 'changed during', amount = amount + 0.01 WHERE id % 50 = 0`);
      await source().query(`DELETE FROM ${B} WHERE id IN (7, 8)`);
      await source().query(`INSERT INTO ${B} (id, amount, note) VALUES (501, 501.01, 'new')`);
      const b = await waitFor('B snapshot and changes', () => converged(B, B), 150_000, 500);
      expect(b.length).toBe(499);
      // A went on loading meanwhile, in the same process (no restart).
      expect((await warehouseRows(A)).length).toBeGreaterThan(aWhenAdded);
      expect(processor!.proc.exitCode).toBeNull();
      expect(b).toContain('1|1.25|old 1');
      expect(b).toContain('50|62.51|changed during');
      // And changes after the snapshot.
      await source().query(`UPDATE ${B} SET note = 'after' WHERE id = 1`);
      await source().query(`DELETE FROM ${B} WHERE id = 2`);
      await waitFor('B changes after the snapshot', () => converged(B, B), 60_000, 250);
      const ops = await wh.admin.query(`SELECT op, count(*)::int AS n FROM "${B}_fact" WHERE id = 1 GROUP BY op ORDER BY op`);
      expect(ops.rows).toEqual([{ op: 'r', n: 1 }, { op: 'u', n: 1 }]);
      expect((await health()).topics).toEqual([`${prefix}.public.${B}`, `${prefix}.public.${A}`].sort());
    } finally {
      const streamed = await stream.stop();
      expect(streamed).toBeGreaterThan(0);
    }
    // Nothing of A's stream was lost while the subscription changed.
    const a = await waitFor('A exact after streaming', () => converged(A, A), 60_000, 250);
    expect(a.length).toBeGreaterThan(1);
    const requested = await wh.admin.query('SELECT source_table, snapshot_requested_at IS NOT NULL AS requested, snapshot_pending FROM cdc.captured_tables ORDER BY source_table');
    expect(requested.rows).toEqual([
      { source_table: `public.${B}`, requested: true, snapshot_pending: false },
      { source_table: `public.${A}`, requested: false, snapshot_pending: false },
    ]);
  });

  it('keeps a table of the same name in another schema apart, and rejects a name collision naming both topics', async () => {
    await source().query(`ALTER PUBLICATION ${publication} ADD TABLE ${C}, ${D}`);
    await capture([A, B, C, D]);
    const c = await waitFor('C in its own table', () => converged(C, `${schema}_${A}`), 150_000, 500);
    expect(c).toEqual(['1|0.01|inventory one', '2|99999999.99|inventory two']);
    expect(await sourceRows(A)).toEqual(await warehouseRows(A)); // A untouched by C
    // D maps to C's warehouse name: its events are rejected with the reason, nothing is mixed in.
    await source().query(`INSERT INTO ${D} (id, amount, note) VALUES (2, 6, 'collides too')`);
    const rejected = await waitFor('D rejected', async () => {
      const r = await wh.admin.query('SELECT stage, reason FROM cdc.rejected_events WHERE topic = $1', [`${prefix}.public.${D}`]);
      return r.rowCount ? r.rows : null;
    }, 60_000, 250);
    expect(rejected[0].stage).toBe('schema');
    expect(rejected[0].reason).toBe(`topics ${prefix}.${schema}.${A} and ${prefix}.public.${D} both map to warehouse table "${schema}_${A}"; `
      + `${prefix}.${schema}.${A} was loaded first and keeps it, events of ${prefix}.public.${D} are not loaded`);
    expect(await warehouseRows(`${schema}_${A}`)).toEqual(c);
  });

  it('stops loading a table removed from the include list, keeping its warehouse table', async () => {
    await capture([A, C]);
    await waitFor('B and D unsubscribed', async () => !(await health()).topics.some((t) => t.endsWith(`.${B}`) || t.endsWith(`.${D}`)), 60_000, 250);
    const removed = await wh.admin.query('SELECT source_table FROM cdc.captured_tables WHERE removed_at IS NOT NULL ORDER BY source_table');
    expect(removed.rows.map((r) => r.source_table)).toEqual([`public.${B}`]);
    expect((await warehouseRows(B)).length).toBe(498);
    // A keeps streaming after the change.
    await source().query(`INSERT INTO ${A} (id, amount, note) VALUES (2, 2.02, 'after removal')`);
    await waitFor('A after removal', () => converged(A, A), 60_000, 250);
  });

  it('asks for no snapshot again after a restart', async () => {
    const record = async () => (await wh.admin.query(
      'SELECT topic, removed_at, snapshot_pending, snapshot_requested_at FROM cdc.captured_tables ORDER BY topic')).rows;
    const before = await record();
    await processor!.stop();
    processor = await startProcessor(`follow-${suffix}-again`, processorEnv());
    // Healthy means the first look at Connect is done (the processor starts consuming after it).
    expect((await health()).topics).toEqual([`${prefix}.${schema}.${A}`, `${prefix}.public.${A}`].sort());
    expect(await record()).toEqual(before);
    await source().query(`INSERT INTO ${A} (id, amount, note) VALUES (3, 3.03, 'after restart')`);
    await waitFor('A after restart', () => converged(A, A), 60_000, 250);
  });
  // Debezium writes table `<tag> Weird` to topic <prefix>.public.<tag>_Weird (Kafka refuses the
  // space); the include list names the real table. Seen: never loaded and nothing said.
  // Its changes only: the rows from before come with Debezium's incremental snapshot, which once
  // failed in CI on a JDBC connection Debezium found closed ("Unable to refresh toastable columns
  // mapping"); the request itself is checked below and in captured-tables.test.
  it('loads a table whose name Kafka does not take as it is', async () => {
    await source().query(`CREATE TABLE ${quotedE} (id integer PRIMARY KEY, amount numeric(12,2), note text)`);
    await sourceAdmin().query(`GRANT SELECT ON ${quotedE} TO debezium`);
    await source().query(`ALTER PUBLICATION ${publication} ADD TABLE ${quotedE}`);
    await capture([A, C, E]);
    // Changes made before the task runs with the new list would be read by the old task, which skips them.
    await waitFor('the task capturing the new table', async () => {
      const tasks = (await (await fetch(`${stackEnv().CONNECT_URL}/connectors/${connector}/tasks`, { headers: connectHeaders() })).json()) as Array<{ config: Record<string, string> }>;
      const status = (await (await fetch(`${stackEnv().CONNECT_URL}/connectors/${connector}/status`, { headers: connectHeaders() })).json()) as { tasks: Array<{ state: string }> };
      return tasks.length > 0 && tasks.every((t) => (t.config['table.include.list'] ?? '').includes(E)) && status.tasks.every((t) => t.state === 'RUNNING');
    }, 60_000, 250);
    await source().query(`INSERT INTO ${quotedE} (id, amount, note) VALUES (1, 1.10, 'one'), (2, 2.20, 'two')`);
    await source().query(`UPDATE ${quotedE} SET note = 'changed' WHERE id = 2`);
    await source().query(`INSERT INTO ${quotedE} (id, amount, note) VALUES (3, 3.30, 'new')`);
    const e = await waitFor('the weirdly named table loaded', () => converged(quotedE, `${tag}_Weird`), 150_000, 500);
    expect(e).toEqual(['1|1.10|one', '2|2.20|changed', '3|3.30|new']);
    const record = await wh.admin.query('SELECT topic, snapshot_requested_at IS NOT NULL AS requested FROM cdc.captured_tables WHERE source_table = $1', [`public.${E}`]);
    expect(record.rows).toEqual([{ topic: `${prefix}.public.${tag}_Weird`, requested: true }]);
  });
});
