// The writer against a real PostgreSQL: one batch → history rows, current rows, offsets.
import { scratchWarehouse, type Scratch } from './scratch';
import { order, tableFixture } from './events';

let wh: Scratch;
beforeAll(async () => { wh = await scratchWarehouse(); });
afterAll(async () => { await wh?.drop(); });

describe('writing batches into a real warehouse', () => {
  it('appends every change to _fact, keeps the newest row per key in _latest, and stores the next offset', async () => {
    const fx = tableFixture();
    const writer = wh.writer();
    const items = [
      await fx.item(0, 0n, 'c', order(1n, '999.99', 'pending'), 100n),
      await fx.item(0, 1n, 'c', order(2n, '0.01', 'pending'), 110n),
      await fx.item(0, 2n, 'u', order(1n, '999.99', 'shipped'), 120n),
      await fx.item(0, 3n, 'd', order(2n, '0.01', 'pending'), 130n),
    ];
    const result = await writer.write(items);
    expect(result.rejects).toEqual([]);
    const fact = await wh.admin.query('SELECT order_id, op, amount, status FROM orders_fact ORDER BY source_lsn');
    expect(fact.rows).toEqual([
      { order_id: '1', op: 'c', amount: '999.99', status: 'pending' },
      { order_id: '2', op: 'c', amount: '0.01', status: 'pending' },
      { order_id: '1', op: 'u', amount: '999.99', status: 'shipped' },
      { order_id: '2', op: 'd', amount: '0.01', status: 'pending' },
    ]);
    const latest = await wh.admin.query('SELECT order_id, amount, status FROM orders_latest ORDER BY order_id');
    expect(latest.rows).toEqual([{ order_id: '1', amount: '999.99', status: 'shipped' }]);
    const offsets = await wh.admin.query('SELECT topic, partition, next_offset FROM cdc.offsets');
    expect(offsets.rows).toEqual([{ topic: fx.topic, partition: 0, next_offset: '4' }]);
  });

  it('locks and stores the offsets of a consumer group whose name needs quoting (BEGIN and the lock go as literals)', async () => {
    const fx = tableFixture();
    const group = `it's "odd" \\ ${fx.topic}`;
    const writer = wh.writer({ group });
    await writer.write([await fx.item(1, 0n, 'c', order(3n, '1.00', 'pending'), 200n)]);
    // A second batch reads the stored offset back: an event below it is not written twice.
    const again = await writer.write([await fx.item(1, 0n, 'c', order(3n, '1.00', 'pending'), 200n), await fx.item(1, 1n, 'u', order(3n, '2.00', 'paid'), 210n)]);
    expect(again.alreadyStored).toBe(1);
    const offsets = await wh.admin.query('SELECT partition, next_offset FROM cdc.offsets WHERE consumer_group = $1', [group]);
    expect(offsets.rows).toEqual([{ partition: 1, next_offset: '2' }]);
    const fact = await wh.admin.query('SELECT count(*)::int AS n FROM orders_fact WHERE order_id = 3');
    expect(fact.rows[0].n).toBe(2);
  });
});
