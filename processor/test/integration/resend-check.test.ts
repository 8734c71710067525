// The re-send check against a real PostgreSQL: a batch whose changes all lie above the highest
// LSN its group stored for their partitions skips it; a re-send (a change at or below) is found
// and dropped; and a change above it that is in the history all the same (another group loads
// the same table) fails that batch, which then goes again with the check, landing once.
import { scratchWarehouse, type Scratch } from './scratch';
import { order, tableFixture } from './events';

let wh: Scratch;
beforeAll(async () => { wh = await scratchWarehouse(); });
afterAll(async () => { await wh?.drop(); });

const facts = async () => (await wh.admin.query('SELECT order_id::int AS id, source_lsn::int AS lsn FROM orders_fact ORDER BY source_lsn')).rows;
const storedMax = async (group: string) => (await wh.admin.query('SELECT partition, max_source_lsn::int AS max FROM cdc.offsets WHERE consumer_group = $1 ORDER BY partition', [group])).rows;

describe('the re-send check', () => {
  it('stores the highest LSN per partition, drops a re-send, and re-checks when another group was first', async () => {
    const fx = tableFixture();
    const a = wh.writer({ group: 'a' });
    const b = wh.writer({ group: 'b' });
    await a.write([await fx.item(0, 0n, 'c', order(1n, '1.00'), 100n), await fx.item(1, 0n, 'c', order(2n, '2.00'), 110n)]);
    expect(await storedMax('a')).toEqual([{ partition: 0, max: 100 }, { partition: 1, max: 110 }]);
    // Above the stored LSN: appended without the check.
    const r1 = await a.write([await fx.item(0, 1n, 'u', order(1n, '1.50'), 120n)]);
    expect(r1.tables.get('orders')).toMatchObject({ written: 1, duplicates: 0 });
    // Debezium re-sends the change at LSN 100 after a connector restart (new offset): found.
    const r2 = await a.write([await fx.item(0, 2n, 'c', order(1n, '1.00'), 100n), await fx.item(0, 3n, 'u', order(1n, '1.75'), 130n)]);
    expect(r2.tables.get('orders')).toMatchObject({ written: 1, duplicates: 1 });
    expect(await storedMax('a')).toEqual([{ partition: 0, max: 130 }, { partition: 1, max: 110 }]);

    // Group b has stored LSN 50 on partition 0, then meets the change at 130 group a appended.
    await b.write([await fx.item(0, 0n, 'c', order(3n, '3.00'), 50n)]);
    await expect(b.write([await fx.item(0, 1n, 'u', order(1n, '1.75'), 130n)])).rejects.toThrow(/already in its history .* writing the batch again with the re-send check/);
    const again = await b.write([await fx.item(0, 1n, 'u', order(1n, '1.75'), 130n)]);
    expect(again.tables.get('orders')).toMatchObject({ written: 0, duplicates: 1 });
    expect((await facts()).map((r) => r.lsn)).toEqual([50, 100, 110, 120, 130]);
  });
});
