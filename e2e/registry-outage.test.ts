// A schema registry that cannot be reached must hold the stream back, never reject its rows:
// the processor waits and retries, and once the registry answers every row lands, exactly.
// The processor reaches the stack's registry through a forwarder on a port of this test, which
// stays closed (connection refused) until the test opens it.
import * as fs from 'fs';
import * as net from 'net';
import { Kafka, logLevel } from 'kafkajs';
import { closeAll, source, stackEnv, stackKafka, warehouse, waitFor } from './lib/stack';
import { captureTable, freePort, type CapturedTable } from './lib/processes';

const table = `e2e_regout_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
let captured: CapturedTable | null = null;
let forwarder: net.Server | null = null;

/** Forwards TCP connections on `port` to the stack's registry. */
async function openForwarder(port: number): Promise<net.Server> {
  const target = new URL(stackEnv().SCHEMA_REGISTRY_URL);
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve, reject) => server.listen(port, '127.0.0.1', resolve).on('error', reject));
  return server;
}

const latest = async (id: number) => (await warehouse().query(`SELECT * FROM "${table}_latest" WHERE id = $1`, [id]).catch(() => ({ rows: [] }))).rows[0] ?? null;
const rejects = async () => (await warehouse().query('SELECT reason FROM cdc.rejected_events WHERE source_table = $1', [table])).rows;

afterAll(async () => {
  await captured?.teardown();
  forwarder?.close();
  await source().query(`DROP TABLE IF EXISTS ${table}`);
  await warehouse().query(`DROP TABLE IF EXISTS "${table}_fact", "${table}_latest" CASCADE`);
  await warehouse().query('DELETE FROM cdc.rejected_events WHERE source_table = $1', [table]);
  if (captured) {
    const admin = stackKafka('e2e-registry-outage').admin();
    const topics = [`${captured.prefix}.public.${table}`, `__debezium-heartbeat.${captured.prefix}`];
    await admin.connect().then(() => admin.deleteTopics({ topics })).catch(() => undefined).finally(() => admin.disconnect());
  }
  await closeAll();
});

it('waits for an unreachable registry and then loads every row, rejecting none', async () => {
  await source().query(`CREATE TABLE ${table} (id integer PRIMARY KEY, amount numeric(12,2) NOT NULL)`);
  await source().query(`INSERT INTO ${table} VALUES (1, 12345678.91)`);
  const port = await freePort();
  const registry = new URL(stackEnv().SCHEMA_REGISTRY_URL);
  captured = await captureTable(table, 'e2ereg', { processorEnv: { SCHEMA_REGISTRY_URL: `http://127.0.0.1:${port}${registry.pathname}` } });
  const logFile = captured.processor.logFile;
  const retried = () => fs.readFileSync(logFile, 'utf8').split('\n').some((l) => l.includes('"schema registry unavailable; retrying"') && l.includes('REGISTRY_UNAVAILABLE'));

  // The snapshot row arrives while the registry is away: it must be retried, not rejected.
  await waitFor('the processor retrying the unreachable registry', async () => retried() || (await rejects()).length > 0, 120_000, 200);
  expect(await rejects()).toEqual([]);
  await source().query(`INSERT INTO ${table} VALUES (2, 0.01)`);
  // /health says what decoding waits for, instead of nothing while nothing moves.
  const waiting = await fetch(`${captured.processor.url}/health`);
  expect(((await waiting.json()) as { registry: string }).registry).toMatch(/^unreachable since /);

  forwarder = await openForwarder(port);
  const one = await waitFor('row 1 once the registry answers', () => latest(1), 120_000, 200);
  expect(one.amount).toBe('12345678.91');
  const two = await waitFor('row 2', () => latest(2), 60_000, 200);
  expect(two.amount).toBe('0.01');
  expect(await rejects()).toEqual([]);
  const healthy = await fetch(`${captured.processor.url}/health`);
  expect(((await healthy.json()) as { registry: string }).registry).toBe('ok');
});
