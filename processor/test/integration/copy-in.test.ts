// COPY with its data sent behind the statement (stage.ts copyIn: one round trip) against a real
// PostgreSQL: the rows arrive exactly; a COPY the server refuses, at the statement or at a row,
// fails with the server's error and leaves the session ready for the next query; a large COPY
// (more than the socket takes at once) arrives whole.
import { copyIn } from '../../src/stage';
import { useScratchSession } from './scratch';

const db = useScratchSession();
beforeAll(() => db.client.query('CREATE TEMP TABLE t (id int, note text)'));

const rows = async () => (await db.client.query('SELECT id, note FROM t ORDER BY id')).rows;

describe('copyIn', () => {
  beforeEach(() => db.client.query('TRUNCATE t'));

  it('loads the rows, escapes and NULLs included', async () => {
    await copyIn(db.client, 'COPY t (id, note) FROM STDIN', '1\ttab\\there\n2\t\\N\n3\tünï ✓\n');
    expect(await rows()).toEqual([{ id: 1, note: 'tab\there' }, { id: 2, note: null }, { id: 3, note: 'ünï ✓' }]);
  });

  it('takes an empty COPY', async () => {
    await copyIn(db.client, 'COPY t (id, note) FROM STDIN', '');
    expect(await rows()).toEqual([]);
  });

  it('fails with the server error when the statement is refused, and the session goes on', async () => {
    await expect(copyIn(db.client, 'COPY no_such_table FROM STDIN', '1\tx\n')).rejects.toThrow('relation "no_such_table" does not exist');
    // The data sent behind the refused statement was ignored, not taken as a query.
    expect((await db.client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await copyIn(db.client, 'COPY t (id, note) FROM STDIN', '4\tafter\n');
    expect(await rows()).toEqual([{ id: 4, note: 'after' }]);
  });

  it('fails when the statement is not a COPY FROM STDIN, and the session goes on', async () => {
    await expect(copyIn(db.client, 'SELECT 1', '1\tx\n')).rejects.toThrow('not a COPY FROM STDIN: SELECT 1');
    expect((await db.client.query('SELECT 2 AS ok')).rows).toEqual([{ ok: 2 }]);
  });

  it('fails on a bad row inside a transaction, which then rolls back cleanly', async () => {
    await db.client.query('BEGIN');
    await expect(copyIn(db.client, 'COPY t (id, note) FROM STDIN', '5\tok\nnot-a-number\tbad\n')).rejects.toThrow('invalid input syntax for type integer');
    await db.client.query('ROLLBACK');
    expect(await rows()).toEqual([]);
    expect((await db.client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('loads a COPY larger than one socket write', async () => {
    const n = 200_000;
    const text = Array.from({ length: n }, (_, i) => `${i}\t${'x'.repeat(40)}\n`).join('');
    await copyIn(db.client, 'COPY t (id, note) FROM STDIN', text);
    expect((await db.client.query('SELECT count(*)::int AS n, sum(id)::bigint AS s FROM t')).rows).toEqual([{ n, s: String((n * (n - 1)) / 2) }]);
  });

  it('queues behind a query in flight and before the next one, in order', async () => {
    const [, , after] = await Promise.all([
      db.client.query('SELECT pg_sleep(0.1)'),
      copyIn(db.client, 'COPY t (id, note) FROM STDIN', '7\tqueued\n'),
      db.client.query('SELECT count(*)::int AS n FROM t'),
    ]);
    expect(after.rows).toEqual([{ n: 1 }]);
  });
});
