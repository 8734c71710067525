import { combineWrites, ident } from '../src/sql';

describe('combineWrites', () => {
  it('joins data-modifying statements as CTEs, renumbering each one\'s parameters after the ones before', () => {
    const q = combineWrites([
      { name: 'a', text: 'INSERT INTO t1 SELECT $1, $2', values: [1, 2] },
      { name: 'b', text: 'UPDATE t2 SET x = $2 WHERE y = $1 OR z = $10', values: ['y', 'x', 3, 4, 5, 6, 7, 8, 9, 'z'] },
    ]);
    expect(q.text).toBe(
      'WITH "a" AS (INSERT INTO t1 SELECT $1, $2 RETURNING 1), "b" AS (UPDATE t2 SET x = $4 WHERE y = $3 OR z = $12 RETURNING 1) ' +
      'SELECT (SELECT count(*) FROM "a")::int AS "a", (SELECT count(*) FROM "b")::int AS "b"');
    expect(q.values).toEqual([1, 2, 'y', 'x', 3, 4, 5, 6, 7, 8, 9, 'z']);
  });
  it('quotes identifiers', () => {
    expect(ident('a"b')).toBe('"a""b"');
  });
});
