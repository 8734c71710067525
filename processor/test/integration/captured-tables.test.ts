// The record of captured tables (migration 0004) in a real warehouse: one warehouse name per
// topic, and exactly one snapshot request per table newly (or again) in capture.
import { Pool } from 'pg';
import { CapturedTables } from '../../src/captured-tables';
import { captureSource, collectionOf, namedTables, type CaptureSource } from '../../src/topics';
import { TransactionCounts } from '../../src/transactions';
import { scratchWarehouse, type Scratch } from './scratch';

let wh: Scratch;
let pool: Pool;
beforeAll(async () => {
  wh = await scratchWarehouse();
  pool = new Pool({ connectionString: wh.processorUrl, max: 4 });
});
afterAll(async () => {
  await pool?.end();
  await wh?.drop();
});

const src = (include: string, prefix = 'shop'): CaptureSource => captureSource(`${prefix}-source`, {
  'connector.class': 'io.debezium.connector.postgresql.PostgresConnector', 'topic.prefix': prefix, 'table.include.list': include,
})!;
const sync = (record: CapturedTables, s: CaptureSource) => record.sync(s, namedTables(s));
const pendingTables = async (record: CapturedTables, prefix = 'shop') => (await record.pending(prefix)).map((p) => `${p.schema}.${p.table}`);

describe('cdc.captured_tables', () => {
  it('gives each warehouse name to one topic and refuses the next one with both topics named, across restarts', async () => {
    const record = new CapturedTables(pool);
    expect(await record.claim([{ topic: 'dbserver1.public.orders', connector: null }, { topic: 'dbserver1.inventory.orders', connector: null }])).toEqual(new Map());
    const refused = await record.claim([{ topic: 'dbserver1.public.inventory_orders', connector: 'orders-source' }]);
    expect(refused.get('dbserver1.public.inventory_orders')).toBe(
      'topics dbserver1.inventory.orders and dbserver1.public.inventory_orders both map to warehouse table "inventory_orders"; '
      + 'dbserver1.inventory.orders was loaded first and keeps it, events of dbserver1.public.inventory_orders are not loaded');
    // A restart (another instance) decides the same way; the first topic is still fine.
    const again = await new CapturedTables(pool).claim([{ topic: 'dbserver1.public.inventory_orders', connector: null }, { topic: 'dbserver1.inventory.orders', connector: null }]);
    expect([...again.keys()]).toEqual(['dbserver1.public.inventory_orders']);
    const names = await wh.admin.query('SELECT topic, warehouse_table FROM cdc.captured_tables ORDER BY topic');
    expect(names.rows).toEqual([
      { topic: 'dbserver1.inventory.orders', warehouse_table: 'inventory_orders' },
      { topic: 'dbserver1.public.orders', warehouse_table: 'orders' },
    ]);
  });

  it('requests one snapshot for a table added to a known connector, none for its initial tables, none again after a restart', async () => {
    const record = new CapturedTables(pool);
    await sync(record, src('public.a'));
    expect(await pendingTables(record)).toEqual([]); // the connector's own initial snapshot covers it
    await sync(record, src('public.a,public.b,public.c_.*'));
    expect(await pendingTables(record)).toEqual(['public.b']);

    const sent: string[][] = [];
    const send = async (topics: string[]) => { sent.push(topics); };
    // Two processors at once: one of them sends.
    const [x, y] = await Promise.all([record.request(['shop.public.b'], send), new CapturedTables(pool).request(['shop.public.b'], send)]);
    expect([...x, ...y]).toEqual(['shop.public.b']);
    expect(sent).toEqual([['shop.public.b']]);

    const restarted = new CapturedTables(pool);
    await sync(restarted, src('public.a,public.b,public.c_.*'));
    expect(await pendingTables(restarted)).toEqual([]);
    const row = await wh.admin.query("SELECT snapshot_requested_at IS NOT NULL AS requested, snapshot_reason FROM cdc.captured_tables WHERE topic = 'shop.public.b'");
    expect(row.rows).toEqual([{ requested: true, snapshot_reason: 'added to table.include.list' }]);
  });

  it('records a table whose name Kafka does not take under the topic Debezium writes it to, keeping its real name for the snapshot', async () => {
    const record = new CapturedTables(pool);
    try {
      await sync(record, src('public.a', 'odd'));
      await sync(record, src('public.a,public.Weird Things', 'odd'));
      const row = await wh.admin.query("SELECT topic, source_table, warehouse_table, snapshot_pending FROM cdc.captured_tables WHERE topic_prefix = 'odd' AND source_table <> 'public.a'");
      expect(row.rows).toEqual([{ topic: 'odd.public.Weird_Things', source_table: 'public.Weird Things', warehouse_table: 'odd_public_Weird_Things', snapshot_pending: true }]);
      // The topic, once it exists, is the same row: the real name stays.
      expect(await record.claim([{ topic: 'odd.public.Weird_Things', connector: 'odd-source' }])).toEqual(new Map());
      expect(await pendingTables(record, 'odd')).toEqual(['public.Weird Things']);
      // Its END records count its events under the real name: the writer counts under it too.
      expect(collectionOf('odd.public.Weird_Things')).toBe('public.Weird Things');
      const counts = new TransactionCounts();
      counts.addXid('odd.public.Weird_Things', 7n, 1n);
      expect(counts.rows().map((r) => r.collection)).toEqual(['public.Weird Things']);
    } finally {
      await wh.admin.query("DELETE FROM cdc.captured_tables WHERE topic_prefix = 'odd'");
    }
  });

  it('a send that fails leaves the snapshot pending', async () => {
    const record = new CapturedTables(pool);
    await sync(record, src('public.a,public.b,public.d'));
    await expect(record.request(['shop.public.d'], async () => { throw new Error('kafka away'); })).rejects.toThrow('kafka away');
    expect(await pendingTables(record)).toEqual(['public.d']);
    expect(await record.request(['shop.public.d'], async () => undefined)).toEqual(['shop.public.d']);
  });

  it('marks a table leaving capture removed, and snapshots it once when it comes back', async () => {
    const record = new CapturedTables(pool);
    await sync(record, src('public.a,public.d'));
    const removed = await wh.admin.query("SELECT topic FROM cdc.captured_tables WHERE topic_prefix = 'shop' AND removed_at IS NOT NULL ORDER BY topic");
    expect(removed.rows.map((r) => r.topic)).toEqual(['shop.public.b']);
    await sync(record, src('public.a,public.b,public.d'));
    await sync(record, src('public.a,public.b,public.d'));
    const back = await record.pending('shop');
    expect(back.map((p) => [p.table, p.reason])).toEqual([['b', 'back in table.include.list']]);
  });

  it('marks a table for a re-snapshot on request (a schema change left rows stale)', async () => {
    const record = new CapturedTables(pool);
    await record.request(['shop.public.b'], async () => undefined);
    expect(await record.requestResnapshot('shop_public_a', 'column type changed')).toBe(true);
    expect(await record.requestResnapshot('no_such_table', 'x')).toBe(false);
    expect((await record.pending('shop')).map((p) => [p.table, p.reason])).toEqual([['a', 'column type changed']]);
  });

  it('lists the topics in capture per connector (what a processor loads while Connect is away)', async () => {
    const record = new CapturedTables(pool);
    expect(await record.inCapture(['shop-source'])).toEqual(['shop.public.a', 'shop.public.b', 'shop.public.d']);
    expect(await record.inCapture([])).toEqual(['dbserver1.inventory.orders', 'dbserver1.public.orders', 'shop.public.a', 'shop.public.b', 'shop.public.d']);
    await record.connectorGone('shop-source');
    expect(await record.inCapture(['shop-source'])).toEqual([]);
  });

  it('asks again for a snapshot whose table still has no topic, a bounded number of times', async () => {
    const record = new CapturedTables(pool);
    const s = src('public.lost,public.found', 'retry');
    await sync(record, s); // the connector's first tables: its own initial snapshot
    await wh.admin.query("UPDATE cdc.captured_tables SET snapshot_pending = true, snapshot_reason = 'added' WHERE topic_prefix = 'retry'");
    const send = jest.fn(async () => undefined);
    expect(await record.request(['retry.public.lost', 'retry.public.found'], send)).toHaveLength(2);
    // Not yet: asked too recently.
    expect(await record.retryUnanswered(['retry.public.found'], 60, 3)).toEqual([]);
    const age = () => wh.admin.query("UPDATE cdc.captured_tables SET snapshot_requested_at = now() - interval '2 minutes' WHERE topic_prefix = 'retry'");
    await age();
    // public.found has its topic (the snapshot ran); public.lost has none: asked again.
    expect(await record.retryUnanswered(['retry.public.found'], 60, 3)).toEqual(['retry.public.lost']);
    expect(await pendingTables(record, 'retry')).toEqual(['public.lost']);
    for (let attempt = 2; attempt <= 3; attempt++) {
      expect(await record.request(['retry.public.lost'], send)).toEqual(['retry.public.lost']);
      await age();
      expect(await record.retryUnanswered(['retry.public.found'], 60, 3)).toEqual(attempt < 3 ? ['retry.public.lost'] : []);
    }
    expect(send).toHaveBeenCalledTimes(3);
    expect((await wh.admin.query("SELECT snapshot_attempts FROM cdc.captured_tables WHERE topic = 'retry.public.lost'")).rows[0].snapshot_attempts).toBe(3);
  });

  it('a warehouse connection terminated while a request waits on Kafka fails that request, not the process', async () => {
    // pg-pool leaves a checked-out client without an 'error' listener: the server's FATAL
    // arriving between two statements was an unhandled 'error' event, and the processor died.
    const record = new CapturedTables(pool);
    const s = src('public.e', 'term');
    await sync(record, s);
    await wh.admin.query("UPDATE cdc.captured_tables SET snapshot_pending = true WHERE topic_prefix = 'term'");
    const terminated = record.request(['term.public.e'], async () => {
      const { rows } = await wh.admin.query(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND usename = 'processor' AND state LIKE 'idle in transaction%'");
      expect(rows).toEqual([{ ok: true }]);
      await new Promise((r) => setTimeout(r, 300)); // the FATAL arrives while the client sits checked out
    });
    await expect(terminated).rejects.toThrow(/terminat/);
    // Nothing was marked; the pool hands out a working connection again.
    expect(await pendingTables(record, 'term')).toEqual(['public.e']);
    expect(await record.request(['term.public.e'], async () => undefined)).toEqual(['term.public.e']);
  });
});
