// Transaction consistency against a real PostgreSQL: END records and per-transaction counts
// written with the batch, the watermark advanced over whole transactions only, and as_of
// refusing an instant past it.
import { Client, Pool } from 'pg';
import { scratchWarehouse, item, type Scratch } from './scratch';
import { transactionFixture } from '../fixtures/transactions';
import { advanceConsistency } from '../../src/consistency';

let wh: Scratch;
/** The processor role, as the periodic step runs it. */
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

const T0 = 1_796_000_000_000_000n; // µs
const at = (us: bigint) => new Date(Number(us / 1000n)).toISOString().replace('Z', '') + String(us % 1000n).padStart(3, '0') + 'Z';

describe('the consistency watermark', () => {
  it('moves over whole transactions only, counts re-sends once, and as_of refuses an instant past it', async () => {
    const fx = transactionFixture();
    const writer = wh.writer();
    const change = async (partition: number, offset: bigint, id: bigint, amount: string, lsn: bigint, tsUs: bigint, xid: bigint | null) => {
      const c = await fx.change('c', id, amount, lsn, tsUs, xid);
      return item(fx.topic, partition, offset, c.decoded, c.key, c.value);
    };
    const end = async (offset: bigint, xid: bigint, lsn: bigint, tsUs: bigint, n: bigint) => {
      const r = await fx.record('END', xid, lsn, tsUs / 1000n, { 'public.orders': n, 'public.debezium_signal': 1n });
      return item(fx.txTopic, 0, offset, r.decoded, r.key, r.value);
    };
    const pool = wh.admin;
    const status = async () => (await pool.query('SELECT source, consistent_through, consistent_lsn::text AS lsn, transactions_pending::int AS pending FROM public.pipeline_status')).rows;
    const asOfSum = async (ts: bigint) => (await pool.query('SELECT coalesce(sum(amount), 0)::text AS s, count(*)::int AS n FROM orders_as_of($1)', [at(ts)])).rows[0];

    // xid 700 (two rows, partitions 0 and 1) and 701 (one row); a snapshot read outside any.
    // Both ENDs and the first half of 700 arrive first; the signal table's event (filtered out
    // before Kafka, not a captured table) is not waited for.
    await writer.write([
      await change(0, 0n, 1n, '10.00', 100n, T0 + 1000n, 700n),
      await change(0, 1n, 9n, '5.00', 90n, T0 - 5000n, null),
      await end(0n, 700n, 110n, T0 + 1000n, 2n),
      await end(1n, 701n, 210n, T0 + 3000n, 1n),
    ]);
    expect((await pool.query('SELECT xid::int, end_lsn::int, event_count::int, collections FROM cdc.transactions ORDER BY end_lsn')).rows).toEqual([
      { xid: 700, end_lsn: 110, event_count: 3, collections: { 'public.orders': '2', 'public.debezium_signal': '1' } },
      { xid: 701, end_lsn: 210, event_count: 2, collections: { 'public.orders': '1', 'public.debezium_signal': '1' } },
    ]);
    await advanceConsistency(processorPool);
    expect(await status()).toEqual([{ source: 'dbserver1', consistent_through: null, lsn: null, pending: 2 }]);
    await expect(asOfSum(T0 + 1000n)).rejects.toThrow(/orders_as_of\(.*\): past the consistency watermark of source dbserver1/);

    // The rest of 700 from the other partition, with a Debezium re-send of its first half (new
    // offset, same LSN): counted once, so 700 is whole, 701 not yet.
    await writer.write([
      await change(1, 0n, 2n, '-10.00', 101n, T0 + 1000n, 700n),
      await change(1, 1n, 1n, '10.00', 100n, T0 + 1000n, 700n),
    ]);
    expect((await pool.query('SELECT xid::int, written::int FROM cdc.transaction_progress ORDER BY xid')).rows).toEqual([{ xid: 700, written: 2 }]);
    const [w] = await advanceConsistency(processorPool);
    expect(w).toMatchObject({ source: 'dbserver1', consistentLsn: 110n, pending: 1 });
    expect(await status()).toEqual([{ source: 'dbserver1', consistent_through: new Date(Number((T0 + 1000n) / 1000n)), lsn: '0/6E', pending: 1 }]);
    // Rows of transactions behind the watermark are gone: a recycled xid starts from zero.
    expect((await pool.query('SELECT count(*)::int AS n FROM cdc.transaction_progress')).rows[0].n).toBe(0);
    expect((await pool.query('SELECT xid::int FROM cdc.transactions ORDER BY end_lsn')).rows).toEqual([{ xid: 700 }, { xid: 701 }]);
    expect(await asOfSum(T0 + 1000n)).toEqual({ s: '5.00', n: 3 });
    await expect(asOfSum(T0 + 1001n)).rejects.toThrow(/past the consistency watermark/);

    await writer.write([await change(0, 2n, 3n, '7.00', 200n, T0 + 3000n, 701n)]);
    await advanceConsistency(processorPool);
    expect(await status()).toMatchObject([{ consistent_through: new Date(Number((T0 + 3000n) / 1000n)), lsn: '0/D2', pending: 0 }]);
    expect(await asOfSum(T0 + 3000n)).toEqual({ s: '12.00', n: 4 });
    // END records behind the watermark are pruned; a re-sent one lands behind it and changes nothing.
    expect((await pool.query('SELECT xid::int FROM cdc.transactions ORDER BY end_lsn')).rows).toEqual([{ xid: 701 }]);
    await writer.write([await end(2n, 700n, 110n, T0 + 1000n, 2n)]);
    await advanceConsistency(processorPool);
    expect(await status()).toMatchObject([{ lsn: '0/D2', pending: 0 }]);
    expect((await pool.query('SELECT xid::int FROM cdc.transactions ORDER BY end_lsn')).rows).toEqual([{ xid: 701 }]);
  });

  it('stays before the first incomplete transaction when both committed in one millisecond', async () => {
    await wh.admin.query(`INSERT INTO cdc.transactions (topic_prefix, id, xid, end_lsn, commit_ts, event_count, collections, kafka_partition, kafka_offset) VALUES
      ('p2', '1:10', 1, 10, '2026-01-01 00:00:00.005+00', 0, '{}', 0, 0),
      ('p2', '2:20', 2, 20, '2026-01-01 00:00:00.005+00', 1, '{"public.orders": 1}', 0, 1)`);
    await wh.admin.query(`INSERT INTO cdc.captured_tables (topic, topic_prefix, source_table, warehouse_table) VALUES ('p2.public.orders', 'p2', 'public.orders', 'p2_public_orders')`);
    const w = (await advanceConsistency(processorPool)).find((x) => x.source === 'p2');
    expect(w).toMatchObject({ consistentLsn: 10n, consistentThrough: new Date('2026-01-01T00:00:00.004999Z'), pending: 1 });
  });

  it('lets analysts read pipeline_status and be refused by as_of with the reason', async () => {
    const url = new URL(process.env.ANALYST_DATABASE_URL!);
    url.pathname = `/${wh.name}`;
    const analyst = new Client({ connectionString: url.toString() });
    await analyst.connect();
    try {
      const { rows } = await analyst.query("SELECT consistent_through FROM public.pipeline_status WHERE source = 'dbserver1'");
      expect(rows).toHaveLength(1);
      const through: Date = rows[0].consistent_through;
      expect((await analyst.query('SELECT count(*)::int AS n FROM orders_as_of($1)', [through])).rows[0].n).toBe(4);
      const err = await analyst.query('SELECT * FROM orders_as_of($1)', [new Date(through.getTime() + 1)]).catch((e) => e);
      expect(err).toMatchObject({ code: 'CDC01', hint: expect.stringMatching(/pipeline_status/) });
      // Analysts see the watermark, not the metadata behind it.
      await expect(analyst.query('SELECT * FROM cdc.transactions')).rejects.toThrow(/permission denied/);
    } finally {
      await analyst.end();
    }
  });
});
