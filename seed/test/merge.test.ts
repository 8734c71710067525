import { KeyedHash, diffSorted, differingColumns } from '../lib/merge';

/** Rows given as [key, hash] pairs, delivered in batches of `size` like the cursor does. */
async function* batches(rows: [number, string][], size = 2): AsyncGenerator<KeyedHash[]> {
  for (let i = 0; i < rows.length; i += size) {
    yield rows.slice(i, i + size).map(([k, h]) => ({ key: BigInt(k), hash: h }));
  }
}

describe('diffSorted (merge join of two sorted streams)', () => {
  it('matches identical streams', async () => {
    const rows: [number, string][] = [[1, 'a'], [2, 'b'], [5, 'c']];
    const r = await diffSorted(batches(rows), batches(rows, 1), 10);
    expect(r).toEqual({ sourceRows: 3, targetRows: 3, matched: 3, missing: 0, extra: 0, different: 0, samples: [] });
  });

  it('finds missing, extra and different keys and lists them in key order', async () => {
    const source: [number, string][] = [[1, 'a'], [2, 'b'], [3, 'c'], [7, 'g'], [9, 'i']];
    const target: [number, string][] = [[1, 'a'], [3, 'X'], [4, 'd'], [9, 'i'], [10, 'j']];
    const r = await diffSorted(batches(source, 3), batches(target, 2), 10);
    expect(r.matched).toBe(2);
    expect([r.missing, r.extra, r.different]).toEqual([2, 2, 1]);
    expect([r.sourceRows, r.targetRows]).toEqual([5, 5]);
    expect(r.samples.map((s) => `${s.kind}:${s.key}`)).toEqual(['missing:2', 'different:3', 'extra:4', 'missing:7', 'extra:10']);
  });

  it('handles an empty side', async () => {
    const rows: [number, string][] = [[1, 'a'], [2, 'b']];
    expect((await diffSorted(batches(rows), batches([]), 10)).missing).toBe(2);
    expect((await diffSorted(batches([]), batches(rows), 10)).extra).toBe(2);
    expect((await diffSorted(batches([]), batches([]), 10)).matched).toBe(0);
  });

  it('counts every difference but keeps only the first `limit` samples', async () => {
    const source = Array.from({ length: 1000 }, (_, i) => [i, 'h'] as [number, string]);
    const r = await diffSorted(batches(source, 100), batches([]), 3);
    expect(r.missing).toBe(1000);
    expect(r.samples.map((s) => Number(s.key))).toEqual([0, 1, 2]);
  });

  it('compares keys numerically, not as text (9 < 10 < 100)', async () => {
    const rows: [number, string][] = [[9, 'a'], [10, 'b'], [100, 'c']];
    expect((await diffSorted(batches(rows), batches(rows), 10)).matched).toBe(3);
  });

  it('compares keys beyond 2^53 exactly', async () => {
    const big = (n: bigint): KeyedHash => ({ key: n, hash: 'h' });
    async function* one(keys: bigint[]) {
      yield keys.map(big);
    }
    const a = 2n ** 60n;
    const r = await diffSorted(one([a, a + 1n]), one([a + 1n]), 10);
    expect(r.samples).toEqual([{ kind: 'missing', key: a }]);
  });

  it('refuses unsorted or duplicate keys rather than giving a wrong answer', async () => {
    await expect(diffSorted(batches([[2, 'a'], [1, 'b']]), batches([]), 10)).rejects.toThrow(/not strictly ascending/);
    await expect(diffSorted(batches([]), batches([[1, 'a'], [1, 'b']]), 10)).rejects.toThrow(/target rows are not strictly ascending/);
  });
});

describe('differingColumns', () => {
  it('names the columns that differ, NULL included', () => {
    const cols = ['order_id', 'amount', 'status', 'product_name'];
    const a = { order_id: '1', amount: '10.00', status: 'paid', product_name: 'Mug' };
    const b = { order_id: '1', amount: '10.0', status: 'paid', product_name: null };
    expect(differingColumns(cols, a, b)).toEqual([
      { column: 'amount', source: '10.00', target: '10.0' },
      { column: 'product_name', source: 'Mug', target: null },
    ]);
  });
});
