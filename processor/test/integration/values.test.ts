// Values that must land exactly, or be rejected with a reason, never dropped or nulled silently:
// keys that String() would confuse, unchanged-TOAST placeholders (also inside arrays), the
// temporal values PostgreSQL holds beyond the everyday range, jsonb's limits, column names.
// Value shapes are those Debezium 3.6.1 sent for the same source values (see e2e/values.test.ts).
import { scratchWarehouse, type Scratch } from './scratch';
import { tableFixture } from './events';

let wh: Scratch;
beforeAll(async () => { wh = await scratchWarehouse(); });
afterAll(async () => { await wh?.drop(); });

const P = '__debezium_unavailable_value';
const opt = (type: any) => ({ name: '', type: ['null', type], default: null });
const field = (name: string, type: any) => ({ ...opt(type), name });
const microTs = { type: 'long', 'connect.version': 1, 'connect.name': 'io.debezium.time.MicroTimestamp' };
const zonedTs = { type: 'string', 'connect.version': 1, 'connect.name': 'io.debezium.time.ZonedTimestamp' };
const date = { type: 'int', 'connect.version': 1, 'connect.name': 'io.debezium.time.Date' };
const interval = { type: 'string', 'connect.version': 1, 'connect.name': 'io.debezium.time.Interval' };
const ID = [{ name: 'id', type: 'long' }];
const json = { type: 'string', 'connect.version': 1, 'connect.name': 'io.debezium.data.Json' };

describe('keys', () => {
  it('keeps snapshot rows whose bytea keys differ only in bytes that are not UTF-8', async () => {
    const fx = tableFixture('bkeys', [{ name: 'k', type: 'bytes' }, field('v', 'string')], [{ name: 'k', type: 'bytes' }]);
    const items = [
      await fx.item(0, 0n, 'r', { k: Buffer.from([0x80]), v: 'a' }, 500n),
      await fx.item(0, 1n, 'r', { k: Buffer.from([0x81]), v: 'b' }, 500n),
      await fx.item(0, 2n, 'r', { k: Buffer.from([0xc3]), v: 'c' }, 500n),
    ];
    const result = await wh.writer().write(items);
    expect(result.tables.get('bkeys')).toMatchObject({ written: 3, duplicates: 0 });
    const rows = await wh.admin.query(`SELECT encode(k, 'hex') AS k, v FROM bkeys_latest ORDER BY k`);
    expect(rows.rows).toEqual([{ k: '80', v: 'a' }, { k: '81', v: 'b' }, { k: 'c3', v: 'c' }]);
  });

  it('keeps composite keys apart when a part contains the old separator', async () => {
    const fx = tableFixture('ckeys', [{ name: 'a', type: 'string' }, { name: 'b', type: 'string' }, field('v', 'string')], [{ name: 'a', type: 'string' }, { name: 'b', type: 'string' }]);
    const items = [
      await fx.item(0, 0n, 'r', { a: 'x\u0001y', b: 'z', v: '1' }, 500n),
      await fx.item(0, 1n, 'r', { a: 'x', b: 'y\u0001z', v: '2' }, 500n),
    ];
    await wh.writer().write(items);
    const rows = await wh.admin.query('SELECT v FROM ckeys_fact ORDER BY v');
    expect(rows.rows).toEqual([{ v: '1' }, { v: '2' }]);
  });
});

describe('unchanged TOAST placeholders', () => {
  const fields = [
    { name: 'id', type: 'long' },
    field('tags', { type: 'array', items: ['null', 'string'] }),
    field('nums', { type: 'array', items: ['null', 'int'] }),
    field('bigs', { type: 'array', items: ['null', 'long'] }),
    field('n', 'int'),
  ];
  const asInts = [...Buffer.from(P)];

  it('takes arrays sent as placeholders from the batch or the warehouse, never writes the placeholder', async () => {
    const fx = tableFixture('toasta', fields, ID);
    const writer = wh.writer();
    const tags = ['t1', 't2'];
    await writer.write([
      await fx.item(0, 0n, 'c', { id: 1n, tags, nums: [1, 2], bigs: [3n], n: 1 }, 100n),
      await fx.item(0, 1n, 'u', { id: 1n, tags: [P], nums: asInts, bigs: asInts.map(BigInt), n: 2 }, 110n),
    ]);
    await writer.write([await fx.item(0, 2n, 'u', { id: 1n, tags: [P], nums: asInts, bigs: asInts.map(BigInt), n: 3 }, 120n)]);
    const fact = await wh.admin.query('SELECT n, tags, nums, bigs FROM toasta_fact ORDER BY source_lsn');
    expect(fact.rows).toEqual([1, 2, 3].map((n) => ({ n, tags, nums: [1, 2], bigs: [3] })));
    const latest = await wh.admin.query('SELECT n, tags, nums FROM toasta_latest');
    expect(latest.rows).toEqual([{ n: 3, tags, nums: [1, 2] }]);
  });

  it('rejects, with the reason, an event whose placeholder has no earlier value anywhere; the rest lands', async () => {
    const fx = tableFixture('toastr', [{ name: 'id', type: 'long' }, field('doc', 'string'), field('n', 'int')], ID);
    const result = await wh.writer().write([
      await fx.item(0, 0n, 'u', { id: 7n, doc: P, n: 1 }, 100n),
      await fx.item(0, 1n, 'c', { id: 8n, doc: 'kept', n: 2 }, 110n),
      await fx.item(0, 2n, 'u', { id: 8n, doc: P, n: 3 }, 120n),
    ]);
    expect(result.rejects.map((r) => [r.offset, r.stage])).toEqual([[0n, 'validate']]);
    expect(result.rejects[0].reason).toMatch(/doc.*placeholder/);
    expect(result.tables.get('toastr')!.written).toBe(2);
    const fact = await wh.admin.query('SELECT id, doc, n FROM toastr_fact ORDER BY source_lsn');
    expect(fact.rows).toEqual([{ id: '8', doc: 'kept', n: 2 }, { id: '8', doc: 'kept', n: 3 }]);
    const rejected = await wh.admin.query('SELECT "offset", stage, reason FROM cdc.rejected_events');
    expect(rejected.rows).toEqual([{ offset: '0', stage: 'validate', reason: result.rejects[0].reason }]);
  });
});

describe('temporal values at the edges of PostgreSQL', () => {
  const fields = [{ name: 'id', type: 'long' }, field('ts', microTs), field('tstz', zonedTs), field('d', date), field('iv', interval)];

  it('lands infinity, BC and years past 9999 exactly, as Debezium sends them', async () => {
    const fx = tableFixture('edges', fields, ID);
    const result = await wh.writer().write([
      // timestamp 'infinity', timestamptz 'infinity', date 'infinity' (streamed)
      await fx.item(0, 0n, 'c', { id: 1n, ts: 9223372036825200000n, tstz: 'infinity', d: -2147472692, iv: 'P1Y2M3DT4H5M6.78S' }, 100n),
      await fx.item(0, 1n, 'c', { id: 2n, ts: -9223372036832400000n, tstz: '-infinity', d: -2147472691, iv: 'P-1Y0M-2DT3H0M0.000001S' }, 110n),
      // 0044-03-15 12:00:00.5 BC
      await fx.item(0, 2n, 'c', { id: 3n, ts: -63517780799500000n, tstz: '-0043-03-15T12:00:00.500000Z', d: -735160, iv: 'P0Y0M0DT0H0M-0.5S' }, 120n),
      // 12000-01-01
      await fx.item(0, 3n, 'c', { id: 4n, ts: 316516204800000000n, tstz: '+12000-01-01T00:00:00.000000Z', d: 3663382, iv: 'P100Y0M0DT0H0M0S' }, 130n),
      // date 'infinity' / '-infinity' as a snapshot sends them
      await fx.item(0, 4n, 'r', { id: 5n, ts: null, tstz: null, d: -622191234, iv: null }, 140n),
      await fx.item(0, 5n, 'r', { id: 6n, ts: null, tstz: null, d: -625821272, iv: null }, 150n),
    ]);
    expect(result.rejects).toEqual([]);
    const rows = await wh.admin.query(`SET TIME ZONE 'UTC'; SELECT id, ts::text, tstz::text, d::text, iv::text FROM edges_latest ORDER BY id`);
    expect((rows as any)[1].rows).toEqual([
      { id: '1', ts: 'infinity', tstz: 'infinity', d: 'infinity', iv: '1 year 2 mons 3 days 04:05:06.78' },
      { id: '2', ts: '-infinity', tstz: '-infinity', d: '-infinity', iv: '-1 years -2 days +03:00:00.000001' },
      { id: '3', ts: '0044-03-15 12:00:00.5+00 BC', tstz: '0044-03-15 12:00:00.5+00 BC', d: '0044-03-15 BC', iv: '-00:00:00.5' },
      { id: '4', ts: '12000-01-01 00:00:00+00', tstz: '12000-01-01 00:00:00+00', d: '12000-01-01', iv: '100 years' },
      { id: '5', ts: null, tstz: null, d: 'infinity', iv: null },
      { id: '6', ts: null, tstz: null, d: '-infinity', iv: null },
    ]);
  });

  it('rejects a value outside PostgreSQL range with a reason naming the column, not the batch', async () => {
    const fx = tableFixture('edgesr', fields, ID);
    const result = await wh.writer().write([
      await fx.item(0, 0n, 'c', { id: 1n, ts: null, tstz: null, d: -3000000, iv: null }, 100n),
      await fx.item(0, 1n, 'c', { id: 2n, ts: -300000000000000000n, tstz: null, d: null, iv: null }, 110n),
      await fx.item(0, 2n, 'c', { id: 3n, ts: 0n, tstz: null, d: 0, iv: null }, 120n),
    ]);
    expect(result.rejects.map((r) => [r.offset, r.stage])).toEqual([[0n, 'validate'], [1n, 'validate']]);
    expect(result.rejects[0].reason).toMatch(/^column d: .*range/);
    expect(result.rejects[1].reason).toMatch(/^column ts: /);
    const rows = await wh.admin.query('SELECT id FROM edgesr_latest');
    expect(rows.rows).toEqual([{ id: '3' }]);
  });
});

describe('json and column names', () => {
  it('rejects only the event whose json jsonb cannot hold (\\u0000), naming the column', async () => {
    const fx = tableFixture('jdocs', [{ name: 'id', type: 'long' }, field('j', json)], ID);
    const result = await wh.writer().write([
      await fx.item(0, 0n, 'c', { id: 1n, j: '{"a": "\\u0000x"}' }, 100n),
      await fx.item(0, 1n, 'c', { id: 2n, j: '{"a": "\\\\u0000 is text", "b": 1.0}' }, 110n),
    ]);
    expect(result.rejects.map((r) => r.offset)).toEqual([0n]);
    expect(result.rejects[0].reason).toMatch(/^column j: .*\\u0000.*jsonb/);
    const rows = await wh.admin.query('SELECT id, j::text FROM jdocs_latest');
    expect(rows.rows).toEqual([{ id: '2', j: '{"a": "\\\\u0000 is text", "b": 1.0}' }]);
  });

  it('loads source columns named like the stage bookkeeping (_seq, _unavailable)', async () => {
    const fx = tableFixture('meta', [{ name: 'id', type: 'long' }, field('_seq', 'string'), field('_unavailable', 'string')], ID);
    const writer = wh.writer();
    await writer.write([await fx.item(0, 0n, 'c', { id: 1n, _seq: 'a', _unavailable: 'b' }, 100n)]);
    await writer.write([await fx.item(0, 1n, 'u', { id: 1n, _seq: 'c', _unavailable: P }, 110n)]);
    const rows = await wh.admin.query('SELECT _seq, _unavailable FROM meta_fact ORDER BY source_lsn');
    expect(rows.rows).toEqual([{ _seq: 'a', _unavailable: 'b' }, { _seq: 'c', _unavailable: 'b' }]);
  });
});

describe('arrays', () => {
  it('writes array elements of dates, instants and decimals in their text form inside jsonb', async () => {
    const decimal = { type: 'bytes', scale: 2, precision: 10, 'connect.version': 1, 'connect.parameters': { scale: '2', 'connect.decimal.precision': '10' }, 'connect.name': 'org.apache.kafka.connect.data.Decimal', logicalType: 'decimal' };
    const arr = (items: any) => ({ type: 'array', items: ['null', items] });
    const fx = tableFixture('arrs', [
      { name: 'id', type: 'long' }, field('da', arr(date)), field('tsa', arr(microTs)), field('tza', arr(zonedTs)),
      field('n2a', arr(decimal)), field('ia', arr('int')), field('ba', arr('bytes')), field('fa', arr('double')),
    ], ID);
    // As Debezium sent date[] {2024-01-02, infinity, 0044-03-15 BC (streamed)} and timestamp[] {…, -infinity}
    const result = await wh.writer().write([await fx.item(0, 0n, 'c', {
      id: 1n, da: [19724, -622191234, -735160, null], tsa: [1704164645123456n, -9223372036832400000n], tza: ['2024-01-02T01:04:05.123456Z'],
      n2a: ['1.50', '-2.00'], ia: [1, null, -3], ba: [Buffer.from([0x80])], fa: [1.5, Number.NaN],
    }, 100n)]);
    expect(result.rejects).toEqual([]);
    const rows = await wh.admin.query('SELECT da::text, tsa::text, tza::text, n2a::text, ia::text, ba::text, fa::text FROM arrs_latest');
    expect(rows.rows).toEqual([{
      da: '["2024-01-02", "infinity", "0044-03-15 BC", null]',
      tsa: '["2024-01-02T03:04:05.123456Z", "-infinity"]',
      tza: '["2024-01-02T01:04:05.123456Z"]',
      n2a: '["1.50", "-2.00"]',
      ia: '[1, null, -3]',
      ba: '["gA=="]',
      fa: '[1.5, "NaN"]',
    }]);
  });
});
