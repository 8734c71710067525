// Debezium's incremental snapshot (how a table added to capture gets its existing rows) emits
// reads without source.lsn. They land, in their place in each key's history.
import { order, source, wire } from '../fixtures/debezium';
import { tableFixture } from './events';
import { item, scratchWarehouse, type Scratch } from './scratch';

let wh: Scratch;
beforeAll(async () => { wh = await scratchWarehouse(); });
afterAll(async () => { await wh?.drop(); });

describe('incremental snapshot reads (no LSN)', () => {
  it('load as the newest state of their key, before any later change, also after a delete', async () => {
    const fx = tableFixture();
    /** A read as Debezium's incremental snapshot sends it: source.lsn and txId null. */
    const read = async (offset: bigint, row: any) => {
      const key = wire(fx.keyId, fx.schemas.type(fx.keyId), { order_id: row.order_id });
      const envelope = { before: null, after: row, source: source(0n, 1_737_014_400_000_000n, { table: 'orders', lsn: null, txId: null, snapshot: 'incremental' }),
        transaction: null, op: 'r', ts_ms: null, ts_us: null, ts_ns: null };
      const value = wire(fx.valueId, fx.schemas.type(fx.valueId), envelope);
      return item(fx.topic, 0, offset, await fx.decoder.decode(fx.topic, key, value), key, value);
    };
    const writer = wh.writer();
    expect((await writer.write([
      await fx.item(0, 0n, 'c', order(1n, '1.00', 'pending'), 100n),
      await fx.item(0, 1n, 'c', order(2n, '2.00', 'pending'), 150n),
      await fx.item(0, 2n, 'u', order(1n, '1.00', 'shipped'), 200n),
      await fx.item(0, 3n, 'd', order(2n, '2.00', 'pending'), 300n),
    ])).rejects).toEqual([]);
    // Out of capture for a while: order 1 changed, order 2 came back, order 3 appeared. Then
    // the snapshot reads, and a change of order 3 after its read.
    const result = await writer.write([
      await read(4n, order(1n, '1.00', 'paid')),
      await read(5n, order(2n, '2.50', 'pending')),
      await read(6n, order(3n, '3.00', 'pending')),
      await fx.item(0, 7n, 'u', order(3n, '3.00', 'cancelled'), 400n),
    ]);
    expect(result.rejects).toEqual([]);
    const latest = await wh.admin.query('SELECT order_id, amount, status, source_lsn FROM orders_latest ORDER BY order_id');
    expect(latest.rows).toEqual([
      { order_id: '1', amount: '1.00', status: 'paid', source_lsn: '201' },
      { order_id: '2', amount: '2.50', status: 'pending', source_lsn: '301' },
      { order_id: '3', amount: '3.00', status: 'cancelled', source_lsn: '400' },
    ]);
    const history = await wh.admin.query("SELECT order_id, op, status FROM orders_fact WHERE order_id IN (1, 3) ORDER BY order_id, source_lsn");
    expect(history.rows).toEqual([
      { order_id: '1', op: 'c', status: 'pending' }, { order_id: '1', op: 'u', status: 'shipped' }, { order_id: '1', op: 'r', status: 'paid' },
      { order_id: '3', op: 'r', status: 'pending' }, { order_id: '3', op: 'u', status: 'cancelled' },
    ]);
  });
});
