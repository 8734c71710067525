// Warehouse columns derived from Debezium's Avro schemas: no hand-written column lists.
// Each Avro field maps to a PostgreSQL type (by its `connect.name` when Debezium sets one)
// and to a "kind" that says how a decoded value becomes COPY text.

export type ValueKind =
  | 'text' | 'bool' | 'int' | 'bigint' | 'float' | 'decimal' | 'vdecimal'
  | 'date' | 'time-ms' | 'time-us' | 'time-ns' | 'ts-ms' | 'ts-us' | 'ts-ns'
  | 'zts' | 'bytes' | 'json' | 'jsontext';

export interface Column {
  name: string;
  /** Canonical PostgreSQL type, as format_type() prints it, so it compares with the catalog. */
  pgType: string;
  kind: ValueKind;
  /** For an array kept as JSON: how its elements become text (dates, instants, decimals…). */
  items?: ValueKind;
  /** The Avro field as registered: its `default` is the column's default at the source
   *  (Debezium propagates it), which a column added later needs (ddl.ts). */
  avroField?: any;
}

export interface TableModel {
  /** Warehouse base name: `<table>_fact`, `<table>_latest`. */
  table: string;
  columns: Column[];
  keyColumns: string[];
}

type AvroSchema = any;

/** Named record definitions in a schema, so that a later reference by name can be resolved. */
function collectNames(schema: AvroSchema, names: Map<string, AvroSchema>, namespace = ''): void {
  if (Array.isArray(schema)) return schema.forEach((s) => collectNames(s, names, namespace));
  if (typeof schema !== 'object' || schema === null) return;
  if (schema.type === 'record' || schema.type === 'enum' || schema.type === 'fixed') {
    const ns = schema.namespace ?? namespace;
    const full = schema.name.includes('.') || !ns ? schema.name : `${ns}.${schema.name}`;
    names.set(full, schema);
    names.set(schema.name, schema);
    if (schema.type === 'record') for (const f of schema.fields) collectNames(f.type, names, ns);
    return;
  }
  if (schema.type === 'array') collectNames(schema.items, names, namespace);
  if (schema.type === 'map') collectNames(schema.values, names, namespace);
}

function deref(schema: AvroSchema, names: Map<string, AvroSchema>): AvroSchema {
  return typeof schema === 'string' && names.has(schema) ? names.get(schema) : schema;
}

/** [null, T] → T (Debezium marks nullable columns that way). */
function nonNull(schema: AvroSchema): AvroSchema {
  if (!Array.isArray(schema)) return schema;
  const rest = schema.filter((s) => s !== 'null');
  if (rest.length !== 1) throw new Error(`unsupported union ${JSON.stringify(schema)}`);
  return rest[0];
}

/** The row record inside a Debezium envelope (the type of `after`). */
export function rowRecord(envelope: AvroSchema): AvroSchema {
  const names = new Map<string, AvroSchema>();
  collectNames(envelope, names);
  const after = envelope.fields?.find((f: any) => f.name === 'after');
  if (!after) throw new Error(`schema ${envelope.name} is not a Debezium envelope (no "after" field)`);
  const record = deref(nonNull(after.type), names);
  if (record?.type !== 'record') throw new Error(`"after" of ${envelope.name} is not a record`);
  return record;
}

/** Source-block fields the processor reads; the rest of the block is skipped when decoding. */
const SOURCE_FIELDS_READ = new Set(['ts_ms', 'ts_us', 'txId', 'lsn']);

/**
 * A reader schema for a Debezium envelope with only what inserts and updates need: `after`,
 * the commit time and position from `source`, and `op`. Decoding through it skips the `before`
 * image and the source block's strings, about half the work per event. Deletes, which need
 * `before`, are decoded with the full schema.
 */
export function leanEnvelope(envelope: AvroSchema): AvroSchema {
  const source = envelope.fields.find((f: any) => f.name === 'source')?.type;
  const op = envelope.fields.find((f: any) => f.name === 'op');
  if (source?.type !== 'record' || !op) throw new Error(`schema ${envelope.name} is not a Debezium envelope (no source or op)`);
  return {
    ...envelope,
    fields: [
      { name: 'after', type: ['null', rowRecord(envelope)], default: null },
      { name: 'source', type: { ...source, fields: source.fields.filter((f: any) => SOURCE_FIELDS_READ.has(f.name)) } },
      op,
      // Transaction metadata (provide.transaction.metadata): whether the event belongs to one.
      ...envelope.fields.filter((f: any) => f.name === 'transaction'),
    ],
  };
}

/** Maps one Avro field type to a PostgreSQL type and a value kind. */
export function mapType(fieldType: AvroSchema): { pgType: string; kind: ValueKind; items?: ValueKind } {
  const t = nonNull(fieldType);
  const avroType: string = typeof t === 'string' ? t : t.type;
  const connectName: string | undefined = typeof t === 'object' ? t['connect.name'] : undefined;
  const connectType: string | undefined = typeof t === 'object' ? t['connect.type'] : undefined;

  if (typeof t === 'object' && t.logicalType === 'decimal') {
    const precision = t.precision ?? t['connect.parameters']?.['connect.decimal.precision'];
    const scale = Number(t.scale ?? t['connect.parameters']?.scale ?? 0);
    return { pgType: precision ? `numeric(${precision},${scale})` : 'numeric', kind: 'decimal' };
  }
  switch (connectName) {
    case 'io.debezium.time.Date': return { pgType: 'date', kind: 'date' };
    case 'io.debezium.time.Time': return { pgType: 'time without time zone', kind: 'time-ms' };
    case 'io.debezium.time.MicroTime': return { pgType: 'time without time zone', kind: 'time-us' };
    case 'io.debezium.time.NanoTime': return { pgType: 'time without time zone', kind: 'time-ns' };
    // Debezium sends `timestamp` columns as local wall time counted from the epoch; read as UTC
    // they keep their instant, which timestamptz then stores exactly.
    case 'io.debezium.time.Timestamp': return { pgType: 'timestamp with time zone', kind: 'ts-ms' };
    case 'io.debezium.time.MicroTimestamp': return { pgType: 'timestamp with time zone', kind: 'ts-us' };
    case 'io.debezium.time.NanoTimestamp': return { pgType: 'timestamp with time zone', kind: 'ts-ns' };
    case 'io.debezium.time.ZonedTimestamp': return { pgType: 'timestamp with time zone', kind: 'zts' };
    case 'io.debezium.time.ZonedTime': return { pgType: 'time with time zone', kind: 'text' };
    case 'io.debezium.time.Interval': return { pgType: 'interval', kind: 'text' };
    case 'io.debezium.data.Uuid': return { pgType: 'uuid', kind: 'text' };
    case 'io.debezium.data.Json': return { pgType: 'jsonb', kind: 'jsontext' };
    case 'io.debezium.data.Xml': return { pgType: 'xml', kind: 'text' };
    case 'io.debezium.data.VariableScaleDecimal': return { pgType: 'numeric', kind: 'vdecimal' };
    default: break;
  }
  switch (avroType) {
    case 'string': return { pgType: 'text', kind: 'text' };
    case 'boolean': return { pgType: 'boolean', kind: 'bool' };
    case 'int': return { pgType: connectType === 'int16' || connectType === 'int8' ? 'smallint' : 'integer', kind: 'int' };
    case 'long': return { pgType: 'bigint', kind: 'bigint' };
    case 'float': return { pgType: 'real', kind: 'float' };
    case 'double': return { pgType: 'double precision', kind: 'float' };
    case 'bytes': return { pgType: 'bytea', kind: 'bytes' };
    case 'enum': return { pgType: 'text', kind: 'text' };
    // Arrays stay jsonb (one type for every element type, and columns already created so stay
    // valid); their elements are written in their text form: dates and instants as PostgreSQL
    // prints them, not as Debezium's day and microsecond counts, decimals as exact strings.
    case 'array': {
      const items = (() => { try { return mapType(t.items).kind; } catch { return 'json' as const; } })();
      return items === 'json' ? { pgType: 'jsonb', kind: 'json' } : { pgType: 'jsonb', kind: 'json', items };
    }
    // Arrays, maps, geometry and other structures: kept whole as JSON rather than dropped.
    default: return { pgType: 'jsonb', kind: 'json' };
  }
}

/** The warehouse model of a captured table, from its Debezium key and value schemas. */
export function tableModel(table: string, valueSchema: AvroSchema, keySchema: AvroSchema | null): TableModel {
  const record = rowRecord(valueSchema);
  const columns: Column[] = record.fields.map((f: any) => ({ name: f.name, ...mapType(f.type), avroField: f }));
  const keyColumns: string[] = keySchema?.type === 'record' ? keySchema.fields.map((f: any) => f.name) : [];
  for (const k of keyColumns) {
    if (!columns.some((c) => c.name === k)) throw new Error(`key column ${k} of ${table} is not in its value schema`);
  }
  return { table, columns, keyColumns };
}

// Naming lives with the other topic rules (home prefix, schemas, other connectors).
export { tableNameForTopic } from './topics';
