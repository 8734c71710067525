// Whole-transaction apply against a real PostgreSQL (migration 0006): a change made in a source
// transaction is appended to the history by its batch but reaches `<table>_latest` and
// `<table>_history` only when the consistency watermark passes its whole transaction, however
// the transaction is split across batches and partitions; snapshot reads land at once; event
// mode brings a table up to date and merges at once again.
import { Pool, type QueryResult } from 'pg';
import { scratchWarehouse, item, type Scratch } from './scratch';
import { transactionFixture } from '../fixtures/transactions';
import { advanceConsistency } from '../../src/consistency';
import type { WarehouseWriter } from '../../src/writer';

let wh: Scratch;
let processorPool: Pool;
beforeAll(async () => {
  wh = await scratchWarehouse();
  processorPool = new Pool({ connectionString: wh.processorUrl, max: 1 });
  await wh.admin.query(
    `INSERT INTO cdc.captured_tables (topic, connector, topic_prefix, source_table, warehouse_table) VALUES ('dbserver1.public.orders', 'orders-source', 'dbserver1', 'public.orders', 'orders')`);
});
afterAll(async () => {
  await processorPool?.end();
  await wh?.drop();
});

const T0 = 1_796_000_000_000_000n; // µs, a whole millisecond
const fx = transactionFixture();
const change = async (op: 'c' | 'u' | 'd' | 'r', partition: number, offset: bigint, id: bigint, amount: string, lsn: bigint, tsUs: bigint, xid: bigint | null) => {
  const c = await fx.change(op, id, amount, lsn, tsUs, xid);
  return item(fx.topic, partition, offset, c.decoded, c.key, c.value);
};
const end = async (offset: bigint, xid: bigint, lsn: bigint, tsUs: bigint, n: bigint) => {
  const r = await fx.record('END', xid, lsn, tsUs / 1000n, { 'public.orders': n });
  return item(fx.txTopic, 0, offset, r.decoded, r.key, r.value);
};
const latest = async () => (await wh.admin.query('SELECT order_id::int AS id, amount::text FROM orders_latest ORDER BY order_id')).rows;
const history = async () => (await wh.admin.query('SELECT order_id::int AS id, amount::text, is_current FROM orders_history ORDER BY order_id, source_lsn')).rows;
const facts = async () => Number((await wh.admin.query('SELECT count(*) FROM orders_fact')).rows[0].count);

describe('whole-transaction apply', () => {
  let writer: WarehouseWriter;
  beforeAll(() => {
    writer = wh.writer({ options: { applyMode: 'transaction', readsTransactions: (p) => p === 'dbserver1' } });
  });

  it('shows a transaction split across batches and partitions only once it is whole, and snapshot reads at once', async () => {
    // A snapshot read (no transaction), and the first half of xid 700 (ids 1 and 2 on two
    // partitions, µs commit time inside the END's millisecond).
    await writer.write([
      await change('r', 0, 0n, 9n, '9.00', 50n, T0 - 5000n, null),
      await change('c', 0, 1n, 1n, '10.00', 100n, T0 + 1234n, 700n),
    ]);
    await advanceConsistency(processorPool);
    expect(await latest()).toEqual([{ id: 9, amount: '9.00' }]);
    expect(await facts()).toBe(2);
    // The END (two events) arrives before the other half: still not whole.
    await writer.write([await end(0n, 700n, 110n, T0 + 1234n, 2n)]);
    await advanceConsistency(processorPool);
    expect(await latest()).toEqual([{ id: 9, amount: '9.00' }]);
    expect(await history()).toEqual([{ id: 9, amount: '9.00', is_current: true }]);
    await writer.write([await change('c', 1, 0n, 2n, '-10.00', 101n, T0 + 1234n, 700n)]);
    const [w] = await advanceConsistency(processorPool);
    // The watermark reaches the rows' microsecond, not only the END's millisecond.
    expect(w.consistentThrough?.toISOString()).toBe('2026-11-30T00:53:20.001Z');
    expect((await wh.admin.query("SELECT consistent_through = timestamptz '2026-11-30T00:53:20.001234Z' AS exact FROM public.pipeline_status")).rows[0].exact).toBe(true);
    expect(await latest()).toEqual([{ id: 1, amount: '10.00' }, { id: 2, amount: '-10.00' }, { id: 9, amount: '9.00' }]);
    expect(await history()).toEqual([{ id: 1, amount: '10.00', is_current: true }, { id: 2, amount: '-10.00', is_current: true }, { id: 9, amount: '9.00', is_current: true }]);
  });

  it('keeps a pending update and delete out of _latest and _history until their transaction is whole', async () => {
    // xid 701: id 1 updated, id 2 deleted, id 3 inserted; xid 702 (later): id 3 updated.
    await writer.write([
      await change('u', 0, 2n, 1n, '5.00', 200n, T0 + 3000n, 701n),
      await change('d', 1, 1n, 2n, '-10.00', 201n, T0 + 3000n, 701n),
      await end(1n, 701n, 210n, T0 + 3000n, 3n),
      await change('c', 0, 3n, 3n, '7.00', 300n, T0 + 4000n, 702n),
      await end(2n, 702n, 310n, T0 + 4000n, 1n),
    ]);
    const [w] = await advanceConsistency(processorPool);
    expect(w.pending).toBe(2);
    expect(await latest()).toEqual([{ id: 1, amount: '10.00' }, { id: 2, amount: '-10.00' }, { id: 9, amount: '9.00' }]);
    expect((await history()).filter((r) => r.id !== 9)).toEqual([{ id: 1, amount: '10.00', is_current: true }, { id: 2, amount: '-10.00', is_current: true }]);
    // The analyst's view of the watermark names what it waits for (read as the analyst role, who
    // has no USAGE on schema cdc: the view reads it as its owner).
    const asAnalyst = async (sql: string) => (await wh.admin.query(`BEGIN; SET LOCAL ROLE analyst; ${sql}; COMMIT`) as unknown as QueryResult[])[2].rows;
    expect(await asAnalyst('SELECT source, transactions_pending::int AS n, waiting_for FROM public.pipeline_status')).toEqual([
      { source: 'dbserver1', n: 2, waiting_for: 'transaction 701:210 (xid 701): public.orders has 2 of 3 events' },
    ]);
    await writer.write([await change('c', 1, 2n, 4n, '-5.00', 202n, T0 + 3000n, 701n)]);
    await advanceConsistency(processorPool);
    expect(await latest()).toEqual([{ id: 1, amount: '5.00' }, { id: 3, amount: '7.00' }, { id: 4, amount: '-5.00' }, { id: 9, amount: '9.00' }]);
    expect((await history()).filter((r) => r.id !== 9)).toEqual([
      { id: 1, amount: '10.00', is_current: false }, { id: 1, amount: '5.00', is_current: true },
      { id: 2, amount: '-10.00', is_current: false }, // closed by the delete
      { id: 3, amount: '7.00', is_current: true }, { id: 4, amount: '-5.00', is_current: true },
    ]);
    expect((await wh.admin.query('SELECT waiting_for FROM public.pipeline_status')).rows[0].waiting_for).toBeNull();
  });

  it('lets an operator take a transaction whose event will never come as whole', async () => {
    await writer.write([await end(3n, 703n, 410n, T0 + 6000n, 1n), await end(4n, 704n, 420n, T0 + 7000n, 0n)]);
    await advanceConsistency(processorPool);
    expect((await wh.admin.query('SELECT consistent_lsn::text AS lsn FROM public.pipeline_status')).rows[0].lsn).toBe('0/136');
    expect((await wh.admin.query("SELECT cdc.skip_open_transaction('dbserver1') AS id")).rows[0].id).toBe('703:410');
    await advanceConsistency(processorPool);
    expect((await wh.admin.query('SELECT consistent_lsn::text AS lsn FROM public.pipeline_status')).rows[0].lsn).toBe('0/1A4');
  });

  it('in event mode, first merges what waits, then merges every change at once', async () => {
    await writer.write([
      await change('u', 0, 4n, 3n, '8.00', 500n, T0 + 9000n, 705n),
      await end(5n, 705n, 510n, T0 + 9000n, 2n), // one more event of 705 never comes
    ]);
    await advanceConsistency(processorPool);
    expect((await latest()).find((r) => r.id === 3)).toEqual({ id: 3, amount: '7.00' });
    const eventWriter = wh.writer({ options: { applyMode: 'event', readsTransactions: () => true } });
    await eventWriter.write([await change('u', 0, 5n, 4n, '-4.00', 600n, T0 + 10000n, 706n)]);
    expect(await latest()).toEqual([{ id: 1, amount: '5.00' }, { id: 3, amount: '8.00' }, { id: 4, amount: '-4.00' }, { id: 9, amount: '9.00' }]);
    expect((await wh.admin.query('SELECT count(*)::int AS n FROM cdc.published_tables')).rows[0].n).toBe(0);
    // The history shows every change again once nothing waits for the watermark.
    expect((await history()).filter((r) => r.is_current).map((r) => r.amount)).toEqual(['5.00', '8.00', '-4.00', '9.00']);
  });

  it('makes a transaction larger than a batch visible at once, when its last batch lands', async () => {
    // xid 800: 5,000 inserts over partitions 0 and 1, written in five batches of 1,000 after its END.
    const N = 5000;
    const base = 10_000n;
    // 705 (above) never gets its last event: taken as whole, or nothing after it would show.
    await wh.admin.query("SELECT cdc.skip_open_transaction('dbserver1')");
    // A new processor session in transaction mode (the one before switched the table to event mode).
    const writer2 = wh.writer({ options: { applyMode: 'transaction', readsTransactions: (p) => p === 'dbserver1' } });
    await writer2.write([await end(6n, 800n, 9_000_000n, T0 + 20_000n, BigInt(N))]);
    const before = (await latest()).length;
    const off = [6n, 3n];
    for (let b = 0; b < 5; b++) {
      const batch = [];
      for (let i = 0; i < 1000; i++) {
        const n = b * 1000 + i;
        const p = n % 2;
        batch.push(await change('c', p, off[p], base + BigInt(n), '1.00', 8_000_000n + BigInt(n), T0 + 20_000n, 800n));
        off[p] = off[p] + 1n;
      }
      await writer2.write(batch);
      await advanceConsistency(processorPool);
      const visible = (await latest()).length - before;
      expect(visible).toBe(b < 4 ? 0 : N);
    }
  });

  it('publishes a transaction that became whole second although it committed in the same microsecond as one passed before', async () => {
    // Seen in CI: xid 10276 committed first (its END first), 10275 second, both at one commit
    // microsecond; once 10276 had moved the watermark to that instant, 10275's delete was never merged.
    const w3 = wh.writer({ options: { applyMode: 'transaction', readsTransactions: (p) => p === 'dbserver1' } });
    const ts = T0 + 30_000_123n;
    await w3.write([await change('c', 0, 2506n, 20_001n, '1.00', 9_050_000n, T0 + 29_000_000n, 899n), await end(7n, 899n, 9_050_100n, T0 + 29_000_000n, 1n)]);
    await advanceConsistency(processorPool);
    expect((await latest()).some((r) => r.id === 20_001)).toBe(true);
    await w3.write([await change('u', 1, 2503n, 20_002n, '2.00', 9_060_200n, ts, 901n), await end(8n, 901n, 9_060_300n, ts, 1n)]);
    await advanceConsistency(processorPool);
    await w3.write([await end(9n, 900n, 9_060_400n, ts, 1n)]);
    await w3.write([await change('d', 0, 2507n, 20_001n, '1.00', 9_060_100n, ts, 900n)]);
    await advanceConsistency(processorPool);
    const ids = (await latest()).map((r) => r.id);
    expect(ids).toContain(20_002);
    expect(ids).not.toContain(20_001); // 900's delete reached _latest
  });

  it('merges a column added to the table after earlier steps of the same session', async () => {
    // publish_range builds its merge from the catalog at each call: a column added since the
    // last step is merged too.
    await wh.admin.query('ALTER TABLE orders_fact ADD COLUMN note text; ALTER TABLE orders_latest ADD COLUMN note text');
    const ts = T0 + 60_000_000n;
    await wh.admin.query(
      `INSERT INTO orders_fact (order_id, amount, op, source_ts, source_lsn, source_txid, note)
       VALUES (30001, 3.00, 'c', timestamptz 'epoch' + $1 * interval '1 microsecond', 9100000, 950, 'added later')`, [ts.toString()]);
    const merged = await processorPool.query(
      `SELECT cdc.publish_range(p, timestamptz 'epoch' + $1 * interval '1 microsecond', timestamptz 'epoch' + $1 * interval '1 microsecond', '{950}')
         FROM cdc.published_tables AS p WHERE p.warehouse_table = 'orders'`, [ts.toString()]);
    expect(merged.rows).toEqual([{ publish_range: '1' }]);
    const row = await wh.admin.query('SELECT amount::text, note FROM orders_latest WHERE order_id = 30001');
    expect(row.rows).toEqual([{ amount: '3.00', note: 'added later' }]);
  });

  it("names the END records it waits for when a transaction's changes came without one", async () => {
    // What a producer holding the END back (Connect's, after broker restarts) leaves behind.
    const w4 = wh.writer({ options: { applyMode: 'transaction', readsTransactions: (p) => p === 'dbserver1' } });
    const ts = T0 + 70_000_000n;
    await w4.write([
      await change('c', 0, 2508n, 40_001n, '1.00', 9_200_000n, ts, 960n),
      await change('c', 1, 2504n, 40_002n, '2.00', 9_200_010n, ts, 960n),
    ]);
    await advanceConsistency(processorPool);
    const waiting = async () => (await wh.admin.query('SELECT waiting_for FROM public.pipeline_status')).rows[0].waiting_for; // admin: UTC
    // Not xid 706 (the event-mode test), which never got its END either: the watermark is past it.
    expect(await waiting()).toBe('the END records of 1 transaction(s) (2 change events in the warehouse, oldest committed 2026-11-30 00:54:30+00): none yet from dbserver1.transaction');
    expect((await latest()).map((r) => r.id)).not.toContain(40_001);
    await w4.write([await end(10n, 960n, 9_200_100n, ts, 2n)]);
    await advanceConsistency(processorPool);
    expect(await waiting()).toBeNull();
    expect((await latest()).map((r) => r.id)).toEqual(expect.arrayContaining([40_001, 40_002]));
  });
});
