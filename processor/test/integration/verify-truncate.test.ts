// make verify's history checks (seed/lib/reconcile.ts checkFacts) on a warehouse the writer filled,
// across a source TRUNCATE: it ends every row before it without a delete per row, so those keys
// are rightly gone from orders_latest, and a key created again after it starts a new history.
import { Client } from 'pg';
import { checkFacts } from '../../../seed/lib/reconcile';
import { tableFixture, order } from './events';
import { item, useScratchSession } from './scratch';

const s = useScratchSession();
const TS0 = 1_737_014_399_999_999n; // the fixture's commit time at LSN 0

it('finds every history sane across a TRUNCATE, and a row the TRUNCATE should have removed', async () => {
  const fx = tableFixture('orders');
  const writer = s.wh.writer();
  await writer.write([await fx.item(0, 0n, 'c', order(1n, '1.00'), 10n), await fx.item(0, 1n, 'c', order(2n, '2.00'), 20n)]);
  await writer.write([
    await fx.item(0, 2n, 'u', order(1n, '1.50'), 30n),
    item(fx.topic, 0, 3n, { kind: 'truncate', table: 'orders', lsn: 40n, sourceTsMicros: TS0 + 40n, txId: 900n }),
    await fx.item(0, 4n, 'c', order(3n, '3.00'), 50n),
    await fx.item(0, 5n, 'c', order(2n, '2.20'), 60n), // key 2 again, created anew after the truncate
  ]);
  expect((await s.client.query('SELECT order_id FROM orders_latest ORDER BY order_id')).rows).toEqual([{ order_id: '2' }, { order_id: '3' }]);

  const c = new Client({ connectionString: s.wh.processorUrl });
  await c.connect();
  try {
    const sane = await checkFacts(c, 10);
    expect({ lastEventMismatches: sane.lastEventMismatches, badHistoryKeys: sane.badHistoryKeys, samples: [...sane.lastEventSamples, ...sane.badHistorySamples] })
      .toEqual({ lastEventMismatches: 0, badHistoryKeys: 0, samples: [] });

    // Key 1 back in orders_latest as it was before the truncate: wrong, and named so.
    await s.wh.admin.query(`INSERT INTO orders_latest (order_id, customer_id, product_name, amount, status, created_at, updated_at, source_lsn, source_ts)
      SELECT order_id, customer_id, product_name, amount, status, created_at, updated_at, source_lsn, source_ts FROM orders_fact WHERE order_id = 1 AND source_lsn = 30`);
    const wrong = await checkFacts(c, 10);
    expect(wrong.lastEventMismatches).toBe(1);
    expect(wrong.lastEventSamples).toEqual([{ orderId: '1', lastOp: 'u', inLatest: true, rule: 'a TRUNCATE came after its last event but the row is in orders_latest' }]);
  } finally {
    await c.end();
  }
});
