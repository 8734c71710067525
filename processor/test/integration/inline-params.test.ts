// Parameters written in as literals (sql.ts inlineParams: the writer's BEGIN and COMMIT messages
// use the simple protocol, which takes no parameters) read back by PostgreSQL exactly as the same
// values bound as parameters: quotes, backslashes, braces, NULL elements, JSON, 64-bit numbers.
import { ident, inlineParams, literal, type Statement } from '../../src/sql';
import { useScratchSession } from './scratch';

const db = useScratchSession();

const nasty = ["it's", 'back\\slash', 'quote"d', '{braces,commas}', 'NULL', '', ' spaced ', 'ünïcødé ✓', 'line\nbreak', "E'\\x41'"];

describe('inlineParams', () => {
  it('gives PostgreSQL the same values as bound parameters', async () => {
    const s: Statement = {
      text: 'SELECT $1::text AS a, $2::text[] AS b, $3::bigint[] AS c, $4::jsonb[]::text[] AS d, $5::int AS e, $6::text AS f, $7::int[] AS g',
      values: [
        "O'Brien \\ \"x\"",
        [...nasty, null],
        ['9223372036854775807', '-9223372036854775808', null],
        [JSON.stringify({ k: 'v"\\\'', n: [1, 2] }), JSON.stringify('x')],
        42,
        null,
        [0, -1, 2147483647],
      ],
    };
    const bound = (await db.client.query(s.text, s.values)).rows[0];
    const inlined = (await db.client.query(inlineParams(s))).rows[0];
    expect(inlined).toEqual(bound);
    expect(inlined.b).toEqual([...nasty, null]);
    expect(inlined.c).toEqual(['9223372036854775807', '-9223372036854775808', null]);
  });

  it('survives standard_conforming_strings = off (backslashes in E\'\' literals)', async () => {
    await db.client.query('SET standard_conforming_strings = off');
    try {
      const s: Statement = { text: 'SELECT $1::text AS a, $2::text[] AS b', values: ['a\\b', ['c\\d', 'e"f']] };
      expect((await db.client.query(inlineParams(s))).rows[0]).toEqual({ a: 'a\\b', b: ['c\\d', 'e"f'] });
    } finally {
      await db.client.query('RESET standard_conforming_strings');
    }
  });

  it('literal() and ident() (DDL defaults, comments, names) read back as written, either setting', async () => {
    for (const scs of ['on', 'off']) {
      await db.client.query(`SET standard_conforming_strings = ${scs}`);
      try {
        for (const text of nasty) {
          const row = (await db.client.query(`SELECT ${literal(text)}::text AS ${ident(text || ' ')}`)).rows[0];
          expect({ scs, row }).toEqual({ scs, row: { [text || ' ']: text } });
        }
      } finally {
        await db.client.query('RESET standard_conforming_strings');
      }
    }
  });

  it('refuses what it cannot write and a statement short of values', () => {
    expect(() => inlineParams({ text: 'SELECT $1', values: [{ a: 1 }] })).toThrow('a object parameter cannot be written as a literal');
    expect(() => inlineParams({ text: 'SELECT $2', values: [1] })).toThrow('statement refers to $2 but has 1 values');
  });
});
