// A column added at the source with a DEFAULT: Debezium sends no event for the rows the ALTER
// filled, so the warehouse learns the value only from the schema. Checks what Debezium really
// registers for such a column (the Avro field's default) and that `_latest` and `_as_of(now())`
// show the default for rows no event touched since, like the source does; and that a default
// of the clock (now()) is not taken for a value but reported as needing a new snapshot.
import * as fs from 'fs';
import { Client } from 'pg';
import { closeAll, registryHeaders, source, stackEnv, waitFor, warehouse } from './lib/stack';
import { captureTable, type CapturedTable } from './lib/processes';

const clients: Client[] = [];
async function client(url: string): Promise<Client> {
  const c = new Client({ connectionString: url, options: '-c TimeZone=UTC', application_name: 'e2e-column-defaults' });
  c.on('error', () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await closeAll();
});

/** The newest registered value schema of a topic (Apicurio's own API; the artifact is `<topic>-value`). */
async function valueSchema(topic: string): Promise<any> {
  const base = stackEnv().APICURIO_REGISTRY_URL ?? `${new URL(stackEnv().SCHEMA_REGISTRY_URL).origin}/apis/registry/v3`;
  const res = await fetch(`${base}/groups/default/artifacts/${encodeURIComponent(`${topic}-value`)}/versions/branch=latest/content`, { headers: registryHeaders() });
  if (!res.ok) throw new Error(`registry answered ${res.status} for ${topic}-value`);
  return res.json();
}

const field = (envelope: any, name: string) => {
  const after = envelope.fields.find((f: any) => f.name === 'after');
  const record = (Array.isArray(after.type) ? after.type : [after.type]).find((t: any) => typeof t === 'object');
  const value = record ?? envelope.fields.find((f: any) => f.name === 'before').type.find((t: any) => typeof t === 'object');
  return value.fields.find((f: any) => f.name === name);
};

describe('a column added at the source with a default', () => {
  const table = `cd_items_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  let captured: CapturedTable | null = null;
  let wh: Client;

  beforeAll(async () => {
    wh = await client(stackEnv().ANALYST_DATABASE_URL);
    await source().query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, name text NOT NULL)`);
    await source().query(`INSERT INTO ${table} VALUES (1, 'first'), (2, 'second')`);
    captured = await captureTable(table, 'cd');
  });

  afterAll(async () => {
    await captured?.teardown();
    await source().query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await warehouse().query(`DROP VIEW IF EXISTS "${table}_history"; DROP FUNCTION IF EXISTS "${table}_as_of"(timestamptz);
      DROP TABLE IF EXISTS "${table}_fact", "${table}_latest", "${table}_truncates"; DELETE FROM cdc.offsets WHERE topic = '${captured?.prefix}.public.${table}'`).catch(() => undefined);
  });

  it('registers the default in the Avro schema, and rows no event touched show it in _latest and _as_of(now())', async () => {
    const latest = async (id: number) => (await wh.query(`SELECT * FROM "${table}_latest" WHERE id = $1`, [id])).rows[0] ?? null;
    // Both rows: the topic's two partitions are applied independently.
    await waitFor('the snapshot rows', async () => (await latest(1)) && latest(2), 90_000, 200);
    await source().query(`ALTER TABLE ${table} ADD COLUMN status text NOT NULL DEFAULT 'new', ADD COLUMN price numeric(10,2) DEFAULT 1.50, ADD COLUMN flag boolean DEFAULT true`);
    // Only row 2 changes: row 1 gets no event, yet the source shows the defaults for it.
    await source().query(`UPDATE ${table} SET name = 'second, changed' WHERE id = 2`);
    await waitFor('the update', async () => (await latest(2))?.name === 'second, changed', 90_000, 200);

    const schema = await valueSchema(`${captured!.prefix}.public.${table}`);
    const status = field(schema, 'status');
    const price = field(schema, 'price');
    const flag = field(schema, 'flag');
    // What Debezium 3.6 + Apicurio's converter register (the processor relies on it).
    expect(status.default).toBe('new');
    expect(flag.default).toBe(true);
    expect(price.default).toBeDefined();

    const expected = { id: '1', name: 'first', status: 'new', price: '1.50', flag: true };
    const row1 = await latest(1);
    expect({ id: row1.id, name: row1.name, status: row1.status, price: row1.price, flag: row1.flag }).toEqual(expected);
    const asOf = (await wh.query(`SELECT id, name, status, price, flag FROM "${table}_as_of"(now()) WHERE id = 1`)).rows[0];
    expect(asOf).toEqual(expected);

    // A default of the clock: Debezium registers the epoch, which must not become the value;
    // the processor reports that the table needs a new snapshot (no hook here: a warning).
    await source().query(`ALTER TABLE ${table} ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now()`);
    await source().query(`UPDATE ${table} SET name = 'second, again' WHERE id = 2`);
    await waitFor('the second update', async () => (await latest(2))?.name === 'second, again', 90_000, 200);
    const seenAt = field(await valueSchema(`${captured!.prefix}.public.${table}`), 'seen_at');
    expect(Date.parse(seenAt.default)).toBe(0);
    expect((await latest(1)).seen_at).toBeNull();
    const log = () => fs.readFileSync(captured!.processor.logFile, 'utf8');
    await waitFor('the re-snapshot warning', async () => /seen_at was added with a default the schema cannot carry/.test(log()), 30_000, 200);
    expect(captured!.processor.proc.exitCode).toBeNull();
  });
});
