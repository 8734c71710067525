// Values as Debezium really sends them, through a processor built from this tree: bytea keys
// that String() would confuse, PostgreSQL's infinity and BC values, arrays of dates, and an
// unchanged TOASTed array (Debezium's placeholder inside a list).
import { closeAll, source, warehouse, waitFor } from './lib/stack';
import { captureTable, type CapturedTable } from './lib/processes';

const table = `e2e_values_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
let captured: CapturedTable | null = null;

const latest = async () => (await warehouse().query(
  `SELECT encode(k, 'hex') AS k, n, ts::text, tstz::text, d::text, da::text, cardinality(ARRAY(SELECT jsonb_array_elements_text(ta))) AS tags, ta->>0 AS first_tag
   FROM "${table}_latest" ORDER BY k`)).rows;

beforeAll(async () => {
  await source().query(`CREATE TABLE ${table} (k bytea PRIMARY KEY, n int, ts timestamp, tstz timestamptz, d date, da date[], ta text[])`);
  // Snapshot rows (op r, one LSN) whose keys are both invalid UTF-8.
  await source().query(`INSERT INTO ${table} (k, n) VALUES ('\\x80', 1), ('\\x81', 1)`);
  captured = await captureTable(table, 'e2evalues');
});

afterAll(async () => {
  await captured?.teardown();
  await source().query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  await warehouse().query(`DROP TABLE IF EXISTS "${table}_fact", "${table}_latest" CASCADE`).catch(() => undefined);
  await warehouse().query(`DROP FUNCTION IF EXISTS "${table}_as_of"`).catch(() => undefined);
  if (captured) {
    await warehouse().query(`DELETE FROM cdc.offsets WHERE topic LIKE $1`, [`${captured.prefix}.%`]).catch(() => undefined);
    await warehouse().query(`DELETE FROM cdc.rejected_events WHERE topic LIKE $1`, [`${captured.prefix}.%`]).catch(() => undefined);
  }
  await closeAll();
});

describe('values from the real connector', () => {
  it('loads every snapshot row of distinct bytea keys', async () => {
    const rows = await waitFor('both snapshot rows', async () => { const r = await latest().catch(() => []); return r.length >= 2 && r; });
    expect(rows.map((r: any) => r.k)).toEqual(['80', '81']);
  });

  it('lands infinity, BC, years past 9999, arrays of dates, and keeps an unchanged TOASTed array', async () => {
    await source().query(`INSERT INTO ${table} VALUES ('\\x82', 1, 'infinity', '0044-03-15 12:00:00.5+00 BC', '-infinity',
      ARRAY['2024-01-02'::date, 'infinity', '12000-01-01'], (SELECT array_agg(md5(i::text)) FROM generate_series(1, 400) AS i))`);
    await source().query(`UPDATE ${table} SET n = 2 WHERE k = '\\x82'`);
    await source().query(`INSERT INTO ${table} (k, n, ts, d) VALUES ('\\x83', 1, '-infinity', '0044-03-15 BC')`);
    await waitFor('the update of x82 and the row x83', async () => { const r = await latest(); return r.length === 4 && r[2].n === 2 && r; });
    const rows = await latest();
    expect(rows[2]).toEqual({
      k: '82', n: 2, ts: 'infinity', tstz: '0044-03-15 12:00:00.5+00 BC', d: '-infinity',
      da: '["2024-01-02", "infinity", "12000-01-01"]', tags: 400, first_tag: 'c4ca4238a0b923820dcc509a6f75849b',
    });
    expect(rows[3]).toMatchObject({ k: '83', ts: '-infinity', d: '0044-03-15 BC' });
    const facts = await warehouse().query(`SELECT n, ta->>0 AS first_tag FROM "${table}_fact" WHERE k = '\\x82' ORDER BY source_lsn`);
    expect(facts.rows).toEqual([{ n: 1, first_tag: 'c4ca4238a0b923820dcc509a6f75849b' }, { n: 2, first_tag: 'c4ca4238a0b923820dcc509a6f75849b' }]);
    const rejected = await warehouse().query(`SELECT reason FROM cdc.rejected_events WHERE topic LIKE $1`, [`${captured!.prefix}.%`]);
    expect(rejected.rows).toEqual([]);
  });
});
