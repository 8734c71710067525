// The same processor code serves any captured table with a primary key: a table of its own
// here, captured by a second connector (with an initial snapshot of rows that existed before)
// and loaded by a second processor instance. Also: a column added while running, an unchanged
// TOASTed value, and an incompatible type change.
import { closeAll, source, warehouse, waitFor } from './lib/stack';
import { captureTable, type CapturedTable } from './lib/processes';

const table = `e2e_items_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
let captured: CapturedTable | null = null;
let processor: CapturedTable['processor'] | null = null;

const latest = async (id: number) => (await warehouse().query(`SELECT * FROM "${table}_latest" WHERE id = $1`, [id])).rows[0] ?? null;
const facts = async (id: number) => (await warehouse().query(`SELECT * FROM "${table}_fact" WHERE id = $1 ORDER BY source_lsn`, [id])).rows;

beforeAll(async () => {
  await source().query(`CREATE TABLE ${table} (
    id integer PRIMARY KEY, name text NOT NULL, price numeric(10,3), qty integer, in_stock boolean,
    sku uuid, attrs jsonb, day date, doc text, seen_at timestamp, updated_at timestamptz DEFAULT now())`);
  // Rows that exist before capture starts: they arrive through the snapshot (op r).
  await source().query(`INSERT INTO ${table} (id, name, price, qty, in_stock, sku, attrs, day, seen_at) VALUES
    (1, 'before capture', 12.345, 3, true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"color": "red", "big": 12345678901234567890}', '2024-02-29', '2025-03-30 02:30:00.123456'),
    (2, 'also before', -0.001, null, false, null, null, null, null)`);
  captured = await captureTable(table, 'e2e');
  processor = captured.processor;
});

afterAll(async () => {
  await captured?.teardown();
  await source().query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  await closeAll();
});

describe('any captured table', () => {
  it('creates <table>_fact and <table>_latest from the schema and loads the snapshot exactly', async () => {
    const row = await waitFor('snapshot row 1', () => latest(1));
    expect(row.name).toBe('before capture');
    expect(row.price).toBe('12.345');
    expect(row.qty).toBe(3);
    expect(row.in_stock).toBe(true);
    expect(row.sku).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(row.attrs).toEqual({ color: 'red', big: 12345678901234567000 });
    const exact = await warehouse().query(`SELECT attrs->>'big' AS big, to_char(day, 'YYYY-MM-DD') AS day,
      to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS seen FROM "${table}_latest" WHERE id = 1`);
    expect(exact.rows[0]).toEqual({ big: '12345678901234567890', day: '2024-02-29', seen: '2025-03-30 02:30:00.123456' });
    const two = await waitFor('snapshot row 2', () => latest(2));
    expect(two.price).toBe('-0.001');
    expect(two.qty).toBeNull();
    expect((await facts(1)).map((f) => f.op)).toEqual(['r']);
    const types = await warehouse().query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [`${table}_latest`]);
    expect(Object.fromEntries(types.rows.map((r) => [r.column_name, r.data_type]))).toMatchObject({
      id: 'integer', name: 'text', price: 'numeric', qty: 'integer', in_stock: 'boolean', sku: 'uuid', attrs: 'jsonb', day: 'date',
      seen_at: 'timestamp with time zone', updated_at: 'timestamp with time zone', source_lsn: 'bigint',
    });
  });

  it('streams changes after the snapshot', async () => {
    await source().query(`INSERT INTO ${table} (id, name, price, qty) VALUES (3, 'streamed', 0.5, 1)`);
    await source().query(`UPDATE ${table} SET qty = 2 WHERE id = 3`);
    await waitFor('the update', async () => (await latest(3))?.qty === 2);
    expect((await facts(3)).map((f) => f.op)).toEqual(['c', 'u']);
  });

  it('never overwrites an unchanged TOASTed value with Debezium\'s placeholder', async () => {
    const docSql = `(SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 2000) g)`;
    await source().query(`UPDATE ${table} SET doc = ${docSql} WHERE id = 1`);
    const doc = (await source().query(`SELECT doc FROM ${table} WHERE id = 1`)).rows[0].doc as string;
    expect(doc.length).toBe(64_000);
    await waitFor('the document', async () => (await latest(1))?.doc === doc);
    // Changing another column: with REPLICA IDENTITY DEFAULT the doc is not in the WAL record.
    await source().query(`UPDATE ${table} SET qty = 42 WHERE id = 1`);
    const row = await waitFor('the qty change', async () => { const r = await latest(1); return r?.qty === 42 ? r : null; });
    expect(row.doc).toBe(doc);
    const history = await facts(1);
    expect(history[history.length - 1].doc).toBe(doc);
  });

  it('adds a column added at the source while running, with no restart', async () => {
    await source().query(`ALTER TABLE ${table} ADD COLUMN note text`);
    await source().query(`INSERT INTO ${table} (id, name, note) VALUES (4, 'with note', 'gift wrap')`);
    const row = await waitFor('the new column', async () => (await latest(4))?.note === 'gift wrap');
    expect(row).toBe(true);
    expect((await latest(3)).note).toBeNull();
    const cols = await warehouse().query(`SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = 'note'`, [`${table}_fact`]);
    expect(cols.rowCount).toBe(1);
    expect(processor!.proc.exitCode).toBeNull();
  });

  it('keeps a dropped column, null from then on', async () => {
    await source().query(`ALTER TABLE ${table} DROP COLUMN in_stock`);
    await source().query(`INSERT INTO ${table} (id, name) VALUES (5, 'after drop')`);
    const row = await waitFor('row after the drop', () => latest(5));
    expect(row.in_stock).toBeNull();
    expect((await latest(1)).in_stock).toBe(true);
  });

  it('reports an incompatible type change and routes its events to rejected_events without stopping', async () => {
    await source().query(`ALTER TABLE ${table} ALTER COLUMN qty TYPE text`);
    await source().query(`INSERT INTO ${table} (id, name, qty) VALUES (6, 'qty as text', 'many')`);
    const reject = await waitFor('the schema reject', async () => (await warehouse().query(
      `SELECT * FROM cdc.rejected_events WHERE source_table = $1 AND stage = 'schema'`, [table])).rows[0]);
    expect(reject.reason).toBe(`column qty of ${table} changed type from integer to text`);
    expect(reject.payload.row.qty).toBe('many');
    const health = await (await fetch(`${processor!.url}/health`)).json() as any;
    expect(health.ok).toBe(true);
  });
});
