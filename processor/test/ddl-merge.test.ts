import { tableModel } from '../src/columns';
import { dataColumns, planDdl } from '../src/ddl';
import { mergeSql } from '../src/merge';
import { envelopeSchema, keySchema, ordersValueFields } from './fixtures/debezium';

const model = tableModel('orders', envelopeSchema('orders', ordersValueFields), keySchema('orders'));
const existing = (extra: Array<[string, string]> = []) =>
  new Map<string, string>([...model.columns.map((c) => [c.name, c.pgType] as [string, string]), ['op', 'text'], ['source_lsn', 'bigint'], ...extra]);

describe('planning warehouse DDL from a table model', () => {
  it('creates history and current tables with a unique event index and a primary key', () => {
    const plan = planDdl(model, null, null);
    expect(plan.conflicts).toEqual([]);
    expect(plan.statements[0]).toContain('CREATE TABLE IF NOT EXISTS "orders_fact" ("order_id" bigint NOT NULL, "customer_id" bigint');
    expect(plan.statements[0]).toContain('"amount" numeric(12,2)');
    expect(plan.statements[1]).toBe('CREATE UNIQUE INDEX IF NOT EXISTS "orders_fact_event_uq" ON "orders_fact" ("order_id", source_lsn, op)');
    expect(plan.statements[2]).toMatch(/CREATE TABLE IF NOT EXISTS "orders_latest" .*PRIMARY KEY \("order_id"\)\) WITH \(fillfactor = 80\)$/);
  });

  it('adds a new column to both tables and nothing else', () => {
    const withColumn = tableModel('orders', envelopeSchema('orders', [...ordersValueFields, { name: 'note', type: ['null', 'string'], default: null }]), keySchema('orders'));
    const plan = planDdl(withColumn, existing(), existing());
    expect(plan.statements).toEqual([
      'ALTER TABLE "orders_fact" ADD COLUMN IF NOT EXISTS "note" text',
      'ALTER TABLE "orders_latest" ADD COLUMN IF NOT EXISTS "note" text',
    ]);
  });

  it('keeps a dropped column and reports a type change instead of applying it', () => {
    const plan = planDdl(model, existing([['legacy', 'text']]), existing([['legacy', 'text']]));
    expect(plan.statements).toEqual([]);
    const changed = new Map(existing());
    changed.set('amount', 'text');
    expect(planDdl(model, changed, changed).conflicts).toEqual(['column amount of orders changed type from text to numeric(12,2)']);
  });

  it('quotes identifiers that come from schemas', () => {
    const odd = tableModel('we"ird', envelopeSchema('weird', [{ name: 'id"; drop table x; --', type: 'long' }]), keySchema('weird', [{ name: 'id"; drop table x; --', type: 'long' }]));
    const plan = planDdl(odd, null, null);
    expect(plan.statements[0]).toContain('"we""ird_fact" ("id""; drop table x; --" bigint NOT NULL');
  });

  it('lists data columns without pipeline columns', () => {
    expect(dataColumns(existing([['note', 'text']]))).toEqual([...model.columns.map((c) => c.name), 'note']);
  });
});

describe('merge SQL', () => {
  const sql = mergeSql('orders', ['order_id', 'status'], ['order_id'], ['status']);
  it('fills unchanged TOAST values from the key\'s previous version in the history', () => {
    expect(sql.fill).toEqual([
      `UPDATE pg_temp."_stage_orders" AS s SET "status" = (SELECT h."status" FROM "orders_fact" AS h WHERE h."order_id" = s."order_id" AND h.source_lsn < s.source_lsn AND h.op <> 'd' ORDER BY h.source_lsn DESC LIMIT 1) WHERE 'status' = ANY (s."cdc$unavailable")`,
    ]);
  });
  it('appends to the history, skipping events it already has (same source position), and keeps only new ones staged', () => {
    expect(sql.appendFact).toContain('INSERT INTO "orders_fact" ("order_id", "status", op, source_ts, source_lsn');
    expect(sql.appendFact).toContain('ON CONFLICT DO NOTHING RETURNING kafka_topic, kafka_partition, kafka_offset');
    expect(sql.appendFact).toMatch(/DELETE FROM pg_temp."_stage_orders" AS s WHERE NOT EXISTS \(SELECT 1 FROM appended/);
  });
  it('merges only the newest event per key and never moves a row back', () => {
    expect(sql.mergeLatest).toContain('SELECT DISTINCT ON ("order_id") * FROM pg_temp."_stage_orders" ORDER BY "order_id", source_lsn DESC, "cdc$seq" DESC');
    expect(sql.mergeLatest).toContain(`DELETE FROM "orders_latest" AS l USING last WHERE last.op = 'd'`);
    expect(sql.mergeLatest).toMatch(/ON CONFLICT \("order_id"\) DO UPDATE SET "status" = EXCLUDED."status", .* WHERE l.source_lsn <= EXCLUDED.source_lsn$/);
  });
});

describe('columns added at the source', () => {
  const base = [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }];
  const key = keySchema('t', [{ name: 'id', type: 'long' }]);
  const have = new Map([['id', 'bigint'], ['name', 'text'], ['op', 'text'], ['source_lsn', 'bigint']]);
  const plan = (fields: any[]) => planDdl(tableModel('t', envelopeSchema('t', [...base, ...fields]), key), have, have);

  it('take the Avro default (exact decimals, strings quoted) on both tables', () => {
    const p = plan([
      { name: 'price', type: [{ type: 'bytes', scale: 2, precision: 10, logicalType: 'decimal' }, 'null'], default: '\u0000\u0096' },
      { name: 'label', type: 'string', default: "it's" },
    ]);
    expect(p.statements).toEqual([
      `ALTER TABLE "t_fact" ADD COLUMN IF NOT EXISTS "price" numeric(10,2) DEFAULT '1.50'::numeric(10,2)`,
      `ALTER TABLE "t_fact" ADD COLUMN IF NOT EXISTS "label" text DEFAULT 'it''s'::text`,
      `ALTER TABLE "t_latest" ADD COLUMN IF NOT EXISTS "price" numeric(10,2) DEFAULT '1.50'::numeric(10,2)`,
      `ALTER TABLE "t_latest" ADD COLUMN IF NOT EXISTS "label" text DEFAULT 'it''s'::text`,
    ]);
    expect(p.resnapshot).toEqual([]);
  });

  it('report a re-snapshot for what the schema cannot carry, and invent no value for it', () => {
    const p = plan([
      { name: 'at', type: { type: 'long', 'connect.name': 'io.debezium.time.MicroTimestamp' }, default: 0 },
      { name: 'big', type: 'long', default: 9007199254740993 },
      { name: 'must', type: 'string' },
      { name: 'maybe', type: ['null', 'string'], default: null },
    ]);
    expect(p.statements.every((s) => !s.includes('DEFAULT'))).toBe(true);
    expect(p.resnapshot).toEqual([
      expect.stringMatching(/^column at was added with a default the schema cannot carry/),
      expect.stringMatching(/^the default of column big is beyond exact JSON numbers/),
      expect.stringMatching(/^column must was added NOT NULL without a default/),
    ]);
    expect(planDdl(tableModel('t', envelopeSchema('t', base), key), null, null).resnapshot).toEqual([]);
  });
});
