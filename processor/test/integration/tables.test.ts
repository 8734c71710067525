// Hardening of the warehouse tables against a real PostgreSQL: long table names, deletes that
// arrive before older changes, snapshot reads of unchanged rows, source truncates, errors of the
// time-travel DDL, columns added at the source.
import { item, quietLog, scratchWarehouse, type Scratch } from './scratch';
import { WarehouseWriter } from '../../src/writer';
import { order, tableFixture } from './events';
import { ordersValueFields } from '../fixtures/debezium';

let wh: Scratch;
beforeAll(async () => { wh = await scratchWarehouse(); });
afterAll(async () => { await wh?.drop(); });

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
/** A name of `bytes` UTF-8 bytes, unique per test. */
let serial = 0;
const longName = (bytes: number, filler = 'x') => {
  const head = `t${serial++}_`;
  let s = head;
  while (Buffer.byteLength(s + filler) <= bytes) s += filler;
  return s.padEnd(bytes - Buffer.byteLength(s) + s.length, 'y');
};

describe('long table names', () => {
  it.each([
    ['58 bytes (the index name would be cut to the fact table name)', 58, 'x'],
    ['63 bytes', 63, 'x'],
    ['80 bytes (schema_table beyond the limit)', 80, 'x'],
  ])('%s: every derived object exists, is distinct, and a re-sent event is recognised', async (_what, bytes, filler) => {
    const table = longName(bytes, filler);
    expect(Buffer.byteLength(table)).toBe(bytes);
    const fx = tableFixture(table);
    const writer = wh.writer();
    const first = await fx.item(0, 0n, 'c', order(1n, '10.00', 'pending'), 100n);
    await writer.write([first, await fx.item(0, 1n, 'u', order(1n, '10.00', 'paid'), 110n)]);
    // Debezium re-sends both after a restart, under new Kafka offsets, in a later batch.
    const again = await writer.write([await fx.item(0, 2n, 'c', order(1n, '10.00', 'pending'), 100n), await fx.item(0, 3n, 'u', order(1n, '10.00', 'paid'), 110n)]);
    expect(again.tables.get(table)).toMatchObject({ written: 0, duplicates: 2 });

    const objects = (await wh.admin.query(
      `SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY relname`,
    )).rows.filter((r) => r.relname.startsWith(table.slice(0, 10)));
    // fact, latest, truncates, history view, the unique event index, the as_of index, the primary keys of latest and truncates
    expect(objects.map((r) => r.relkind).sort()).toEqual(['i', 'i', 'i', 'i', 'r', 'r', 'r', 'v']);
    for (const r of objects) expect(Buffer.byteLength(r.relname)).toBeLessThanOrEqual(63);
    const uq = (await wh.admin.query(
      `SELECT i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE '%event_uq'`,
    )).rows;
    expect(uq.length).toBeGreaterThan(0);

    const fact = objects.find((r) => r.relname.endsWith('_fact'))!.relname;
    const facts = await wh.admin.query(`SELECT op, status FROM ${q(fact)} ORDER BY source_lsn`);
    expect(facts.rows).toEqual([{ op: 'c', status: 'pending' }, { op: 'u', status: 'paid' }]);
    const fn = (await wh.admin.query(`SELECT proname FROM pg_proc WHERE proname LIKE $1`, [`${table.slice(0, 10)}%_as_of`])).rows;
    expect(fn).toHaveLength(1);
    const asOf = await wh.admin.query(`SELECT order_id, status FROM ${q(fn[0].proname)}(now())`);
    expect(asOf.rows).toEqual([{ order_id: '1', status: 'paid' }]);
    await wh.admin.query(`DROP TABLE ${objects.filter((r) => r.relkind === 'r').map((r) => q(r.relname)).join(', ')} CASCADE`);
  });

  it('keeps short names as they were', async () => {
    const fx = tableFixture('short_names');
    await wh.writer().write([await fx.item(0, 0n, 'c', order(1n), 100n)]);
    const names = (await wh.admin.query(`SELECT relname FROM pg_class WHERE relname LIKE 'short_names%' ORDER BY relname`)).rows.map((r) => r.relname);
    expect(names).toEqual(['short_names_fact', 'short_names_fact_event_uq', 'short_names_fact_ts_idx', 'short_names_history', 'short_names_latest', 'short_names_latest_pkey', 'short_names_truncates', 'short_names_truncates_pkey']);
  });
});

describe('a delete that arrives before an older change of its key', () => {
  it('does not bring the row back in _latest, _as_of or _history', async () => {
    const fx = tableFixture('resurrect');
    const writer = wh.writer();
    await writer.write([await fx.item(0, 0n, 'c', order(1n, '5.00', 'pending'), 5n)]);
    // The delete (LSN 20) first, then an update the source made before it (LSN 10), later.
    await writer.write([await fx.item(0, 1n, 'd', order(1n, '5.00', 'pending'), 20n)]);
    await writer.write([await fx.item(1, 0n, 'u', order(1n, '5.00', 'paid'), 10n)]);

    expect((await wh.admin.query('SELECT * FROM resurrect_latest')).rows).toEqual([]);
    expect((await wh.admin.query('SELECT * FROM resurrect_as_of(now())')).rows).toEqual([]);
    const history = (await wh.admin.query('SELECT status, op, source_lsn, is_current, valid_to IS NULL AS open FROM resurrect_history ORDER BY valid_from, source_lsn')).rows;
    expect(history).toEqual([
      { status: 'pending', op: 'c', source_lsn: '5', is_current: false, open: false },
      { status: 'paid', op: 'u', source_lsn: '10', is_current: false, open: false },
    ]);
    // As of an instant between the update and the delete, the row was live, paid.
    const between = (await wh.admin.query(`SELECT status FROM resurrect_as_of((SELECT source_ts FROM resurrect_fact WHERE source_lsn = 10))`)).rows;
    expect(between).toEqual([{ status: 'paid' }]);
  });

  it('lets a later insert of the same key through', async () => {
    const fx = tableFixture('reinsert');
    const writer = wh.writer();
    await writer.write([await fx.item(0, 0n, 'c', order(1n, '5.00', 'pending'), 5n), await fx.item(0, 1n, 'd', order(1n, '5.00', 'pending'), 20n)]);
    await writer.write([await fx.item(0, 2n, 'c', order(1n, '7.00', 'pending'), 30n)]);
    expect((await wh.admin.query('SELECT amount FROM reinsert_latest')).rows).toEqual([{ amount: '7.00' }]);
  });
});

describe('snapshot reads of rows that did not change', () => {
  it('add no version and no history row, and are counted as unchanged', async () => {
    const fx = tableFixture('resnap');
    const writer = wh.writer();
    await writer.write([await fx.item(0, 0n, 'c', order(1n, '5.00', 'pending'), 5n), await fx.item(0, 1n, 'c', order(2n, '6.00', 'pending'), 6n)]);
    // An incremental snapshot reads both rows again: 1 unchanged, 2 differs (a change was missed).
    const result = await writer.write([
      await fx.item(0, 2n, 'r', order(1n, '5.00', 'pending'), 50n),
      await fx.item(0, 3n, 'r', order(2n, '6.50', 'pending'), 50n),
      await fx.item(0, 4n, 'r', order(3n, '1.00', 'pending'), 50n),
    ]);
    expect(result.tables.get('resnap')).toMatchObject({ written: 2, unchanged: 1 });
    const fact = (await wh.admin.query('SELECT order_id, op, amount FROM resnap_fact ORDER BY source_lsn, order_id')).rows;
    expect(fact).toEqual([
      { order_id: '1', op: 'c', amount: '5.00' },
      { order_id: '2', op: 'c', amount: '6.00' },
      { order_id: '2', op: 'r', amount: '6.50' },
      { order_id: '3', op: 'r', amount: '1.00' },
    ]);
    expect((await wh.admin.query('SELECT count(*)::int AS n FROM resnap_history WHERE order_id = 1')).rows).toEqual([{ n: 1 }]);
    expect((await wh.admin.query('SELECT order_id, amount, source_lsn FROM resnap_latest ORDER BY order_id')).rows).toEqual([
      { order_id: '1', amount: '5.00', source_lsn: '5' },
      { order_id: '2', amount: '6.50', source_lsn: '50' },
      { order_id: '3', amount: '1.00', source_lsn: '50' },
    ]);
  });

  it('compares nulls as equal and every data column, not only the key', async () => {
    const fields = [...ordersValueFields, { name: 'note', type: ['null', 'string'], default: null }];
    const fx = tableFixture('resnap_null', fields);
    const writer = wh.writer();
    await writer.write([await fx.item(0, 0n, 'c', { ...order(1n), note: null }, 5n), await fx.item(0, 1n, 'c', { ...order(2n), note: 'a' }, 6n)]);
    const result = await writer.write([
      await fx.item(0, 2n, 'r', { ...order(1n), note: null }, 50n),
      await fx.item(0, 3n, 'r', { ...order(2n), note: null }, 50n),
    ]);
    expect(result.tables.get('resnap_null')).toMatchObject({ written: 1, unchanged: 1 });
  });
});

const TS0 = 1_737_014_399_999_999n; // the fixture's commit time at LSN 0 (tsUs = TS0 + lsn)
const truncate = (fx: ReturnType<typeof tableFixture>, table: string, partition: number, offset: bigint, lsn: bigint) =>
  item(fx.topic, partition, offset, { kind: 'truncate', table, lsn, sourceTsMicros: TS0 + lsn, txId: 900n });
const at = (lsn: bigint) => new Date(Number((TS0 + lsn) / 1000n)).toISOString().replace('Z', `${String((TS0 + lsn) % 1000n).padStart(3, '0')}Z`);

describe('a TRUNCATE at the source', () => {
  it('empties _latest in the batch order, and history and as_of know the instant', async () => {
    const fx = tableFixture('trunc');
    const writer = wh.writer();
    await writer.write([await fx.item(0, 0n, 'c', order(1n, '1.00'), 10n), await fx.item(0, 1n, 'c', order(2n, '2.00'), 20n)]);
    const result = await writer.write([
      await fx.item(0, 2n, 'u', order(1n, '1.50'), 30n),
      truncate(fx, 'trunc', 0, 3n, 40n),
      await fx.item(0, 4n, 'c', order(3n, '3.00'), 50n),
    ]);
    expect(result.tables.get('trunc')).toMatchObject({ written: 2, truncates: 1 });
    expect((await wh.admin.query('SELECT order_id, amount FROM trunc_latest ORDER BY order_id')).rows).toEqual([{ order_id: '3', amount: '3.00' }]);

    const asOf = async (lsn: bigint) => (await wh.admin.query('SELECT order_id, amount FROM trunc_as_of($1::timestamptz) ORDER BY order_id', [at(lsn)])).rows;
    expect(await asOf(35n)).toEqual([{ order_id: '1', amount: '1.50' }, { order_id: '2', amount: '2.00' }]);
    expect(await asOf(40n)).toEqual([]);
    expect(await asOf(45n)).toEqual([]);
    expect(await asOf(50n)).toEqual([{ order_id: '3', amount: '3.00' }]);
    const history = (await wh.admin.query(
      `SELECT order_id, amount, valid_to = $1::timestamptz AS ended_by_truncate, is_current FROM trunc_history ORDER BY source_lsn`, [at(40n)],
    )).rows;
    expect(history).toEqual([
      { order_id: '1', amount: '1.00', ended_by_truncate: false, is_current: false },
      { order_id: '2', amount: '2.00', ended_by_truncate: true, is_current: false },
      { order_id: '1', amount: '1.50', ended_by_truncate: true, is_current: false },
      { order_id: '3', amount: '3.00', ended_by_truncate: null, is_current: true },
    ]);

    // A change older than the truncate, arriving later (another partition), does not come back;
    // the truncate re-sent is recognised.
    const late = await writer.write([await fx.item(1, 0n, 'u', order(2n, '2.50'), 35n), truncate(fx, 'trunc', 1, 1n, 40n)]);
    expect(late.tables.get('trunc')).toMatchObject({ truncates: 0, duplicates: 1 });
    expect((await wh.admin.query('SELECT order_id FROM trunc_latest ORDER BY order_id')).rows).toEqual([{ order_id: '3' }]);
    expect((await wh.admin.query('SELECT count(*)::int AS n FROM trunc_truncates')).rows).toEqual([{ n: 1 }]);
    expect(await asOf(45n)).toEqual([]);
  });

  it('of a table the warehouse has not seen yet is recorded', async () => {
    const fx = tableFixture('trunc_first');
    await wh.writer().write([truncate(fx, 'trunc_first', 0, 0n, 5n), await fx.item(0, 1n, 'c', order(1n), 10n)]);
    expect((await wh.admin.query('SELECT order_id FROM trunc_first_latest')).rows).toEqual([{ order_id: '1' }]);
    expect((await wh.admin.query('SELECT source_lsn FROM trunc_first_truncates')).rows).toEqual([{ source_lsn: '5' }]);
  });
});

describe('time-travel DDL', () => {
  it('fails the batch on an error it was not designed to absorb, instead of leaving the function stale', async () => {
    const fx = tableFixture('tt_err');
    const writer = wh.writer();
    await writer.write([await fx.item(0, 0n, 'c', order(1n), 10n)]);
    // Someone changes a warehouse column's type: the as_of function's UNION cannot be built.
    await wh.admin.query('ALTER TABLE tt_err_latest ALTER COLUMN amount TYPE text');
    const fx2 = tableFixture('tt_err', [...ordersValueFields, { name: 'note', type: ['null', 'string'], default: null }]);
    await expect(writer.write([await fx2.item(0, 1n, 'u', { ...order(1n), note: 'x' }, 20n)])).rejects.toThrow(/UNION types/);
    expect((await wh.admin.query("SELECT next_offset FROM cdc.offsets WHERE topic = $1", [fx.topic])).rows).toEqual([{ next_offset: '1' }]);
  });

  it('sees a dropped view at the next batch, and retries a refused replacement once the obstacle is gone', async () => {
    const fx = tableFixture('tt_stale');
    const log = quietLog();
    const writer = new WarehouseWriter(wh.processorUrl, 'it', {}, '__debezium_unavailable_value', log, { timeTravelRetryMs: 0 });
    try {
      await writer.write([await fx.item(0, 0n, 'c', order(1n), 10n)]);
      await wh.admin.query('DROP VIEW tt_stale_history');
      await writer.write([await fx.item(0, 1n, 'u', order(1n, '2.00'), 20n)]);
      expect((await wh.admin.query('SELECT count(*)::int AS n FROM tt_stale_history')).rows).toEqual([{ n: 2 }]);

      // An incompatible view (a column renamed) that an admin's own view depends on: the
      // replacement is refused with a warning, and the batch goes on.
      await wh.admin.query('ALTER VIEW tt_stale_history RENAME COLUMN op TO op_renamed; CREATE VIEW public.admin_report AS SELECT * FROM tt_stale_history');
      const fx2 = tableFixture('tt_stale', [...ordersValueFields, { name: 'note', type: ['null', 'string'], default: null }]);
      const r = await writer.write([await fx2.item(0, 2n, 'u', { ...order(1n, '3.00'), note: 'n' }, 30n)]);
      expect(r.tables.get('tt_stale')).toMatchObject({ written: 1 });
      expect(log.lines.some((l) => l.level === 'warn' && /cannot replace view tt_stale_history/.test(l.message))).toBe(true);
      expect((await wh.admin.query('SELECT note FROM tt_stale_as_of(now())')).rows).toEqual([{ note: 'n' }]);

      // The admin drops their view: the next batch (same schema) makes the history view again.
      await wh.admin.query('DROP VIEW public.admin_report');
      await writer.write([await fx2.item(0, 3n, 'u', { ...order(1n, '4.00'), note: 'n' }, 40n)]);
      expect((await wh.admin.query('SELECT op, note FROM tt_stale_history ORDER BY source_lsn')).rows).toEqual([
        { op: 'c', note: null }, { op: 'u', note: null }, { op: 'u', note: 'n' }, { op: 'u', note: 'n' },
      ]);
    } finally {
      await writer.close();
    }
  });
});

describe('a column added at the source', () => {
  const v1 = [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }];
  const key = [{ name: 'id', type: 'long' }];
  const decimal = { type: 'bytes', scale: 2, precision: 10, 'connect.version': 1, 'connect.parameters': { scale: '2', 'connect.decimal.precision': '10' }, 'connect.name': 'org.apache.kafka.connect.data.Decimal', logicalType: 'decimal' };
  // As Debezium 3.6 registers `ADD COLUMN status text NOT NULL DEFAULT 'new', price numeric(10,2)
  // DEFAULT 1.50, flag boolean DEFAULT true` (see e2e/column-defaults.test.ts).
  const withDefaults = [
    ...v1,
    { name: 'status', type: { type: 'string', 'connect.default': 'new' }, default: 'new' },
    { name: 'price', type: [{ ...decimal, 'connect.default': '\u0000\u0096' }, 'null'], default: '\u0000\u0096' },
    { name: 'flag', type: [{ type: 'boolean', 'connect.default': true }, 'null'], default: true },
  ];

  it('with a default: rows no event touched since show it in _latest and _as_of(now())', async () => {
    const fx1 = tableFixture('defaults', v1, key);
    const writer = wh.writer();
    await writer.write([await fx1.item(0, 0n, 'c', { id: 1n, name: 'one' }, 10n), await fx1.item(0, 1n, 'c', { id: 2n, name: 'two' }, 11n)]);
    const fx2 = tableFixture('defaults', withDefaults, key);
    await writer.write([await fx2.item(0, 2n, 'u', { id: 2n, name: 'two!', status: 'old', price: '9.99', flag: false }, 20n)]);
    const expected = [
      { id: '1', name: 'one', status: 'new', price: '1.50', flag: true },
      { id: '2', name: 'two!', status: 'old', price: '9.99', flag: false },
    ];
    expect((await wh.admin.query('SELECT id, name, status, price, flag FROM defaults_latest ORDER BY id')).rows).toEqual(expected);
    expect((await wh.admin.query('SELECT id, name, status, price, flag FROM defaults_as_of(now()) ORDER BY id')).rows).toEqual(expected);
  });

  it('with a default, in the batch of changes from before the ALTER: those rows take it too; a column dropped later stays null', async () => {
    const fx1 = tableFixture('defaults_batch', v1, key);
    const fx2 = tableFixture('defaults_batch', withDefaults, key);
    const writer = wh.writer();
    await writer.write([await fx1.item(0, 0n, 'c', { id: 1n, name: 'one' }, 10n), await fx1.item(0, 1n, 'c', { id: 2n, name: 'two' }, 11n)]);
    // Row 1 changed before the ALTER (old schema), row 2 after it: one batch.
    await writer.write([
      await fx1.item(0, 2n, 'u', { id: 1n, name: 'one!' }, 15n),
      await fx2.item(0, 3n, 'u', { id: 2n, name: 'two!', status: 'old', price: null, flag: null }, 20n),
    ]);
    expect((await wh.admin.query('SELECT id, name, status, price, flag FROM defaults_batch_latest ORDER BY id')).rows).toEqual([
      { id: '1', name: 'one!', status: 'new', price: '1.50', flag: true },
      { id: '2', name: 'two!', status: 'old', price: null, flag: null },
    ]);
    // The columns dropped again at the source: a newer event without them leaves them null.
    await writer.write([
      await fx2.item(0, 4n, 'u', { id: 2n, name: 'two?', status: 'x', price: '2.00', flag: false }, 30n),
      await fx1.item(0, 5n, 'u', { id: 1n, name: 'one?' }, 40n),
    ]);
    expect((await wh.admin.query('SELECT id, status, price, flag FROM defaults_batch_latest ORDER BY id')).rows).toEqual([
      { id: '1', status: null, price: null, flag: null },
      { id: '2', status: 'x', price: '2.00', flag: false },
    ]);
  });

  it('renamed, or NOT NULL with a default the schema cannot carry: the writer asks for a re-snapshot after commit', async () => {
    const calls: Array<[string, string]> = [];
    const hooked = new WarehouseWriter(wh.processorUrl, 'it', {}, '__debezium_unavailable_value', quietLog(), { onResnapshot: (t, r) => { calls.push([t, r]); } });
    try {
      const fx1 = tableFixture('renamed', v1, key);
      await hooked.write([await fx1.item(0, 0n, 'c', { id: 1n, name: 'one' }, 10n)]);
      expect(calls).toEqual([]);
      const fx2 = tableFixture('renamed', [{ name: 'id', type: 'long' }, { name: 'title', type: 'string' },
        { name: 'seen_at', type: { type: 'string', 'connect.version': 1, 'connect.default': '1970-01-01T00:00:00Z', 'connect.name': 'io.debezium.time.ZonedTimestamp' }, default: '1970-01-01T00:00:00Z' },
        { name: 'code', type: 'string' }], key);
      await hooked.write([await fx2.item(0, 1n, 'c', { id: 2n, title: 'two', seen_at: '2026-01-01T00:00:00Z', code: 'x' }, 20n)]);
      const reasons = calls.map(([, r]) => r);
      expect(calls.every(([t]) => t === 'renamed')).toBe(true);
      expect(reasons).toEqual([
        expect.stringMatching(/^column title was added NOT NULL without a default/),
        expect.stringMatching(/^column seen_at was added with a default the schema cannot carry .*now\(\)/),
        expect.stringMatching(/^column code was added NOT NULL without a default/),
        'columns title, seen_at, code appeared while name is no longer in the schema (a rename?)',
      ]);
      // No default was invented for them.
      expect((await wh.admin.query('SELECT title, seen_at, code FROM renamed_latest WHERE id = 1')).rows).toEqual([{ title: null, seen_at: null, code: null }]);
    } finally {
      await hooked.close();
    }
    // Without a hook: a warning names the table and the reason.
    const log = quietLog();
    const plain = new WarehouseWriter(wh.processorUrl, 'it2', {}, '__debezium_unavailable_value', log);
    try {
      const fx1 = tableFixture('renamed2', v1, key);
      await plain.write([await fx1.item(0, 0n, 'c', { id: 1n, name: 'one' }, 10n)]);
      const fx2 = tableFixture('renamed2', [{ name: 'id', type: 'long' }, { name: 'title', type: ['null', 'string'], default: null }], key);
      await plain.write([await fx2.item(0, 1n, 'u', { id: 1n, title: 'one' }, 20n)]);
      expect(log.lines.filter((l) => l.level === 'warn' && /no re-snapshot hook/.test(l.message)).map((l) => l.fields?.table)).toEqual(['renamed2']);
    } finally {
      await plain.close();
    }
  });
});
