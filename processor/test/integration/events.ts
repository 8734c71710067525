// Debezium-shaped change events for the integration tier, decoded by the real Decoder from
// Avro in the Confluent wire format (test/fixtures/debezium.ts builds the schemas).
import { Decoder, type Decoded } from '../../src/decode';
import { FakeSchemas, envelopeSchema, keySchema, order, ordersValueFields, source, wire } from '../fixtures/debezium';
import { item } from './scratch';
import type { BatchItem } from '../../src/writer';

export interface TableFixture {
  topic: string;
  schemas: FakeSchemas;
  decoder: Decoder;
  valueId: number;
  keyId: number;
  /** One change event as Kafka would deliver it, decoded. */
  event(op: 'c' | 'u' | 'd' | 'r', row: Record<string, unknown>, lsn: bigint, opts?: { tsUs?: bigint; before?: Record<string, unknown> | null; key?: Record<string, unknown> }): Promise<{ decoded: Decoded; key: Buffer; value: Buffer }>;
  /** The same, wrapped as the batch item of (partition, offset). */
  item(partition: number, offset: bigint, op: 'c' | 'u' | 'd' | 'r', row: Record<string, unknown>, lsn: bigint, opts?: { tsUs?: bigint; before?: Record<string, unknown> | null; key?: Record<string, unknown> }): Promise<BatchItem>;
}

let nextId = 1000;

/** A captured table `table` with the given value fields and key fields (orders by default). */
export function tableFixture(table = 'orders', fields: any[] = ordersValueFields, keyFields: any[] = [{ name: 'order_id', type: 'long' }]): TableFixture {
  const schemas = new FakeSchemas();
  const valueId = schemas.add(nextId++, envelopeSchema(table, fields));
  const keyId = schemas.add(nextId++, keySchema(table, keyFields));
  const decoder = new Decoder(schemas);
  const topic = `dbserver1.public.${table}`;
  const keyNames = keyFields.map((f) => f.name);
  const fx: TableFixture = {
    topic, schemas, decoder, valueId, keyId,
    async event(op, row, lsn, opts = {}) {
      const tsUs = opts.tsUs ?? 1_737_014_399_999_999n + lsn;
      const keyRecord = opts.key ?? Object.fromEntries(keyNames.map((k) => [k, row[k]]));
      const key = wire(keyId, schemas.type(keyId), keyRecord);
      const envelope = {
        before: op === 'd' ? (opts.before === undefined ? row : opts.before) : (opts.before ?? null),
        after: op === 'd' ? null : row,
        source: source(lsn, tsUs, { table }),
        transaction: null, op, ts_ms: null, ts_us: null, ts_ns: null,
      };
      const value = wire(valueId, schemas.type(valueId), envelope);
      return { decoded: await decoder.decode(topic, key, value), key, value };
    },
    async item(partition, offset, op, row, lsn, opts) {
      const e = await fx.event(op, row, lsn, opts);
      return item(topic, partition, offset, e.decoded, e.key, e.value);
    },
  };
  return fx;
}

export { order };
