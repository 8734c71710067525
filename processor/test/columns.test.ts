import { mapType, tableModel, tableNameForTopic } from '../src/columns';
import { envelopeSchema, keySchema, ordersValueFields } from './fixtures/debezium';

describe('warehouse columns from Avro schemas', () => {
  it('derives the orders table with exact types', () => {
    const model = tableModel('orders', envelopeSchema('orders', ordersValueFields), keySchema('orders'));
    expect(model.keyColumns).toEqual(['order_id']);
    expect(model.columns.map((c) => [c.name, c.pgType])).toEqual([
      ['order_id', 'bigint'],
      ['customer_id', 'bigint'],
      ['product_name', 'text'],
      ['amount', 'numeric(12,2)'],
      ['status', 'text'],
      ['created_at', 'timestamp with time zone'],
      ['updated_at', 'timestamp with time zone'],
    ]);
  });

  it.each([
    [{ type: 'int', 'connect.name': 'io.debezium.time.Date' }, 'date', 'date'],
    [{ type: 'long', 'connect.name': 'io.debezium.time.MicroTimestamp' }, 'timestamp with time zone', 'ts-us'],
    [{ type: 'long', 'connect.name': 'io.debezium.time.Timestamp' }, 'timestamp with time zone', 'ts-ms'],
    [{ type: 'long', 'connect.name': 'io.debezium.time.MicroTime' }, 'time without time zone', 'time-us'],
    [{ type: 'string', 'connect.name': 'io.debezium.time.ZonedTime' }, 'time with time zone', 'text'],
    [{ type: 'string', 'connect.name': 'io.debezium.data.Uuid' }, 'uuid', 'text'],
    [{ type: 'string', 'connect.name': 'io.debezium.data.Json' }, 'jsonb', 'jsontext'],
    [{ type: 'int', 'connect.type': 'int16' }, 'smallint', 'int'],
    ['int', 'integer', 'int'],
    ['boolean', 'boolean', 'bool'],
    ['double', 'double precision', 'float'],
    ['bytes', 'bytea', 'bytes'],
    [['null', { type: 'bytes', logicalType: 'decimal', precision: 5, scale: 0 }], 'numeric(5,0)', 'decimal'],
    [{ type: 'record', name: 'VariableScaleDecimal', 'connect.name': 'io.debezium.data.VariableScaleDecimal', fields: [] }, 'numeric', 'vdecimal'],
    [{ type: 'array', items: 'string' }, 'jsonb', 'json'],
  ])('maps %j to %s', (avroType, pgType, kind) => {
    expect(mapType(avroType)).toMatchObject({ pgType, kind });
  });

  it('keeps arrays as jsonb and says how their elements become text', () => {
    expect(mapType({ type: 'array', items: ['null', { type: 'int', 'connect.name': 'io.debezium.time.Date' }] })).toEqual({ pgType: 'jsonb', kind: 'json', items: 'date' });
    expect(mapType({ type: 'array', items: { type: 'array', items: 'int' } })).toEqual({ pgType: 'jsonb', kind: 'json' });
  });

  it('names warehouse tables after the topic', () => {
    expect(tableNameForTopic('dbserver1.public.orders')).toBe('orders');
    expect(tableNameForTopic('dbserver1.sales.orders')).toBe('sales_orders');
  });

  it('refuses a key that is not among the columns', () => {
    expect(() => tableModel('orders', envelopeSchema('orders', ordersValueFields), keySchema('orders', [{ name: 'nope', type: 'long' }])))
      .toThrow(/key column nope/);
  });
});
