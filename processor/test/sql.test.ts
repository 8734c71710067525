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
  it('adds one-row reads as JSON columns, their parameters after the writes\' ones, and stands alone without writes', () => {
    const read = { name: 'r', text: 'SELECT $1::text AS a, $2::int AS b', values: ['x', 2] };
    const q = combineWrites([{ name: 'w', text: 'DELETE FROM t WHERE k = $1', values: [7] }], [read]);
    expect(q.text).toBe('WITH "w" AS (DELETE FROM t WHERE k = $1 RETURNING 1) SELECT (SELECT count(*) FROM "w")::int AS "w", ' +
      '(SELECT row_to_json(r) FROM (SELECT $2::text AS a, $3::int AS b) AS r) AS "r"');
    expect(q.values).toEqual([7, 'x', 2]);
    expect(combineWrites([], [read]).text).toBe('SELECT (SELECT row_to_json(r) FROM (SELECT $1::text AS a, $2::int AS b) AS r) AS "r"');
  });
  it('quotes identifiers', () => {
    expect(ident('a"b')).toBe('"a""b"');
  });
});
