// Kafka message (Confluent wire format: magic 0, 4-byte schema id, Avro) → a change event.
// Bad input becomes a `reject` result, never an exception: the stream must not stop on it.
// Only a registry that gives no definite answer throws (RegistryUnavailableError), because that
// is worth retrying: a good row must never be rejected because the registry was away.
import type * as avro from 'avsc';
import { avroType } from './avro';
import type { SchemaSource, WriterSchema } from './registry';
import { RegistryUnavailableError, UnknownSchemaError, UnsupportedSchemaError } from './errors';
import { keyText } from './key';
import { leanEnvelope, tableModel, tableNameForTopic, type TableModel } from './columns';

export type Op = 'c' | 'u' | 'd' | 'r';

export interface ChangeEvent {
  table: string;
  op: Op;
  /** The row image: `after`, or for a delete `before` completed with the key. */
  row: Record<string, unknown>;
  keyText: string;
  sourceTsMicros: bigint;
  /** Null only for Debezium's incremental snapshot reads (placed in SQL, see placeReadsSql). */
  lsn: bigint | null;
  txId: bigint | null;
  /** Debezium attached a transaction block: the event counts toward its transaction's END
   *  record (snapshot reads and events of connectors without transaction metadata do not). */
  inTransaction?: boolean;
  model: TableModel;
  /** Identifies the model: a new value or key schema means columns may have changed. */
  schemaKey: string;
}

export type Decoded =
  | { kind: 'event'; event: ChangeEvent }
  | { kind: 'skip'; why: string }
  /** TRUNCATE of the table (op 't'): no row image and no key, only its position in the log. */
  | { kind: 'truncate'; table: string; lsn: bigint; sourceTsMicros: bigint; txId: bigint | null }
  /** An END record of `<prefix>.transaction` (transaction metadata; BEGIN records are skipped). */
  | { kind: 'transaction'; end: TransactionEnd }
  | { kind: 'reject'; stage: 'decode' | 'schema' | 'validate'; table: string; reason: string; payload?: unknown };

/** Debezium's END record: one per source transaction the connector streamed. */
export interface TransactionEnd {
  prefix: string;
  /** Debezium's id of the END record, `<xid>:<lsn of the commit>` for PostgreSQL. */
  id: string;
  /** The transaction's xid: `source.txId` of its change events (their own `transaction.id`
   *  carries each event's LSN instead, so only the xid links them to the END record). */
  xid: bigint;
  /** Commit order: the LSN in the id. */
  endLsn: bigint;
  commitTsMs: bigint;
  eventCount: bigint;
  /** Events per `schema.table`, as decimal strings. */
  collections: Record<string, string>;
}

const TRANSACTION_VALUE = 'io.debezium.connector.common.TransactionMetadataValue';

/** Reads an END record (null for BEGIN); throws when the id is not `<xid>:<lsn>`. */
export function transactionEnd(topic: string, record: any): TransactionEnd | null {
  if (record?.status !== 'END') return null;
  const m = /^(\d+):(\d+)$/.exec(String(record.id));
  if (!m) throw new Error(`transaction id ${JSON.stringify(record.id)} is not <xid>:<lsn> (a PostgreSQL connector's)`);
  const collections: Record<string, string> = {};
  for (const c of record.data_collections ?? []) {
    if (c) collections[c.data_collection] = (BigInt(collections[c.data_collection] ?? 0) + BigInt(c.event_count)).toString();
  }
  return {
    prefix: topic.replace(/\.transaction$/, ''),
    id: String(record.id),
    xid: BigInt(m[1]),
    endLsn: BigInt(m[2]),
    commitTsMs: BigInt(record.ts_ms),
    eventCount: BigInt(record.event_count ?? 0),
    collections,
  };
}

const MAGIC_BYTE = 0;

export function parseWire(buf: Buffer): { schemaId: number; payload: Buffer } {
  if (buf.length < 5) throw new Error(`message of ${buf.length} bytes is too short for the Confluent wire format`);
  if (buf[0] !== MAGIC_BYTE) throw new Error(`unknown magic byte ${buf[0]} (expected 0, Confluent wire format)`);
  return { schemaId: buf.readInt32BE(1), payload: buf.subarray(5) };
}

const OPS = new Set(['c', 'u', 'd', 'r']);

export class Decoder {
  private readonly models = new Map<string, TableModel>();
  private readonly tables = new Map<string, string>();
  /** Per value schema id: the lean reader (see leanEnvelope), or null where it cannot be built. */
  private readonly readers = new Map<number, { type: avro.Type; resolver: avro.Resolver } | null>();
  /** Schemas already fetched, read without an await (a microtask per schema per message
   *  showed in profiles), and per value schema whether it is Debezium's transaction record. */
  private readonly known = new Map<number, WriterSchema>();
  private readonly isTransaction = new Map<number, boolean>();
  /** Per value schema id, per key schema id: the models' cache key, built once. */
  private readonly schemaKeys = new Map<number, Map<number, string>>();

  constructor(private readonly schemas: SchemaSource) {}

  async decode(topic: string, key: Buffer | null, value: Buffer | null): Promise<Decoded> {
    let table = this.tables.get(topic);
    if (table === undefined) this.tables.set(topic, (table = tableNameForTopic(topic)));
    // Debezium follows a delete with a tombstone (null value) for log compaction; it carries no change.
    if (value === null || value.length === 0) return { kind: 'skip', why: 'tombstone' };

    let valueSchema: WriterSchema;
    let envelope: any;
    let keySchema: WriterSchema | null = null;
    let keyRecord: any = null;
    try {
      const v = parseWire(value);
      valueSchema = this.known.get(v.schemaId) ?? (await this.schema(v.schemaId));
      let transaction = this.isTransaction.get(valueSchema.id);
      if (transaction === undefined) {
        transaction = valueSchema.raw?.['connect.name'] === TRANSACTION_VALUE || `${valueSchema.raw?.namespace}.${valueSchema.raw?.name}` === TRANSACTION_VALUE;
        this.isTransaction.set(valueSchema.id, transaction);
      }
      if (transaction) {
        const end = transactionEnd(topic, valueSchema.type.fromBuffer(v.payload));
        return end ? { kind: 'transaction', end } : { kind: 'skip', why: 'transaction begin' };
      }
      const lean = this.leanReader(valueSchema);
      envelope = lean ? lean.type.fromBuffer(v.payload, lean.resolver) : valueSchema.type.fromBuffer(v.payload);
      if (lean && envelope.op === 'd') envelope = valueSchema.type.fromBuffer(v.payload);
      if (key !== null) {
        const k = parseWire(key);
        keySchema = this.known.get(k.schemaId) ?? (await this.schema(k.schemaId));
        keyRecord = keySchema.type.fromBuffer(k.payload);
      }
    } catch (err) {
      if (err instanceof RegistryUnavailableError) throw err;
      return { kind: 'reject', stage: 'decode', table, reason: `cannot decode: ${(err as Error).message}` };
    }

    // Debezium sends a TRUNCATE without a key (EventDispatcher: "truncate events must have null
    // key schema"), so it is recognised before the check for tables without a primary key.
    if (envelope?.op === 't') {
      const source = envelope.source ?? {};
      if (source.lsn === null || source.lsn === undefined) {
        return { kind: 'reject', stage: 'validate', table, reason: 'truncate without source.lsn', payload: envelope };
      }
      return {
        kind: 'truncate',
        table,
        lsn: BigInt(source.lsn),
        sourceTsMicros: sourceMicros(source),
        txId: source.txId === null || source.txId === undefined ? null : BigInt(source.txId),
      };
    }

    if (!keySchema) {
      return { kind: 'reject', stage: 'schema', table, reason: `table ${table} has no primary key (message without key); only tables with a primary key are loaded`, payload: envelope };
    }
    const op = envelope?.op;
    if (!OPS.has(op)) {
      return { kind: 'reject', stage: 'validate', table, reason: `unsupported operation ${JSON.stringify(op)}`, payload: envelope };
    }

    let keys = this.schemaKeys.get(valueSchema.id);
    if (!keys) this.schemaKeys.set(valueSchema.id, (keys = new Map()));
    let schemaKey = keys.get(keySchema.id);
    if (schemaKey === undefined) keys.set(keySchema.id, (schemaKey = `${valueSchema.id}/${keySchema.id}`));
    let model = this.models.get(schemaKey);
    if (!model) {
      try {
        model = tableModel(table, valueSchema.raw, keySchema.raw);
      } catch (err) {
        return { kind: 'reject', stage: 'schema', table, reason: (err as Error).message, payload: envelope };
      }
      this.models.set(schemaKey, model);
    }

    const source = envelope.source ?? {};
    const row = op === 'd' ? { ...(envelope.before ?? {}), ...keyRecord } : envelope.after;
    if (!row) return { kind: 'reject', stage: 'validate', table, reason: `op ${op} without a row image`, payload: envelope };
    const lsn = source.lsn;
    // Incremental snapshot reads carry no LSN (Debezium DBZ-4329); every other event must.
    if ((lsn === null || lsn === undefined) && op !== 'r') {
      return { kind: 'reject', stage: 'validate', table, reason: 'event without source.lsn', payload: envelope };
    }
    const event: ChangeEvent = {
      table,
      op,
      row,
      keyText: keyText(model.keyColumns, keyRecord),
      sourceTsMicros: sourceMicros(source),
      lsn: lsn === null || lsn === undefined ? null : BigInt(lsn),
      txId: source.txId === null || source.txId === undefined ? null : BigInt(source.txId),
      inTransaction: envelope.transaction !== null && envelope.transaction !== undefined,
      model,
      schemaKey,
    };
    return { kind: 'event', event };
  }

  /** A schema by id. Only a definite answer (no such schema, or one that can never be used)
   *  rejects the message; any other failure is the registry's and is retried. */
  private async schema(id: number): Promise<WriterSchema> {
    try {
      const schema = await this.schemas.get(id);
      this.known.set(id, schema);
      return schema;
    } catch (err) {
      if (err instanceof UnknownSchemaError || err instanceof UnsupportedSchemaError || err instanceof RegistryUnavailableError) throw err;
      throw new RegistryUnavailableError(`schema id ${id}: ${(err as Error)?.message ?? err}`, { cause: err });
    }
  }

  private leanReader(schema: WriterSchema): { type: avro.Type; resolver: avro.Resolver } | null {
    let reader = this.readers.get(schema.id);
    if (reader === undefined) {
      try {
        const type = avroType(leanEnvelope(schema.raw));
        reader = { type, resolver: type.createResolver(schema.type) };
      } catch {
        reader = null; // not a Debezium envelope: the full decode says why
      }
      this.readers.set(schema.id, reader);
    }
    return reader;
  }
}

/** Source commit time in microseconds: Debezium 2+ carries ts_us; older ones only ts_ms. */
export function sourceMicros(source: any): bigint {
  if (source.ts_us !== undefined && source.ts_us !== null) return BigInt(source.ts_us);
  return BigInt(source.ts_ms ?? 0) * 1000n;
}
