// Two lanes (or two processors) writing the first batches of the same new table at once both
// create it: without serialising, one fails in the catalog ("duplicate key value violates unique
// constraint pg_type_typname_nsp_index") or on an object the other just made.
import { scratchWarehouse, type Scratch } from './scratch';
import { order, tableFixture } from './events';

let wh: Scratch;
beforeAll(async () => { wh = await scratchWarehouse(); });
afterAll(async () => { await wh?.drop(); });

describe('DDL on one table from two writers at once', () => {
  it('creates and evolves the table without error, round after round', async () => {
    const a = wh.writer({ group: 'race' });
    const b = wh.writer({ group: 'race' });
    const extra = { name: 'note', type: ['null', 'string'], default: null };
    for (let round = 0; round < 12; round++) {
      const table = `race_${round}`;
      const fx = tableFixture(table);
      const results = await Promise.allSettled([
        a.write([await fx.item(0, 0n, 'c', order(1n), 100n)]),
        b.write([await fx.item(1, 0n, 'c', order(2n), 101n)]),
      ]);
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);
      // Then both see a new column of the same table at once (ALTER … ADD COLUMN from both).
      const { ordersValueFields } = await import('../fixtures/debezium');
      const fx2 = tableFixture(table, [...ordersValueFields, extra]);
      const results2 = await Promise.allSettled([
        a.write([await fx2.item(0, 1n, 'c', { ...order(3n), note: 'x' }, 110n)]),
        b.write([await fx2.item(1, 1n, 'c', { ...order(4n), note: 'y' }, 111n)]),
      ]);
      expect(results2.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);
      expect((await wh.admin.query(`SELECT count(*)::int AS n FROM ${table}_fact`)).rows[0].n).toBe(4);
    }
  });
});
