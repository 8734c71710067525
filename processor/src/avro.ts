// avsc options for Debezium's Avro: exact longs and exact decimals.
import * as avro from 'avsc';
import { decimalFromBytes, decimalToBytes } from './decimal';

// Debezium's source block carries ts_ns (~1.7e18) and LSNs, and bigint columns may hold any
// int64: a JS number would round them, so every Avro long decodes to a BigInt.
export const BigIntLongType = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (x: unknown) => BigInt(x as string | number),
  toJSON: (n: bigint) => n.toString(),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** Avro `bytes` with logicalType decimal ⇄ an exact decimal string such as "999.99". */
export class DecimalType extends avro.types.LogicalType {
  private readonly scale: number;

  constructor(attrs: any, opts?: any) {
    super(attrs, opts);
    this.scale = Number(attrs.scale ?? 0);
  }

  _fromValue(buf: Buffer): string {
    return decimalFromBytes(buf, this.scale);
  }

  _toValue(value: string): Buffer {
    return decimalToBytes(value, this.scale);
  }

  _resolve(type: avro.Type): ((x: any) => any) | undefined {
    if (avro.Type.isType(type, 'logical:decimal') && (type as any).scale === this.scale) {
      return (x: any) => x;
    }
    return undefined;
  }
}

function isLong(schema: unknown): boolean {
  if (schema === 'long') return true;
  return typeof schema === 'object' && schema !== null && (schema as any).type === 'long' && !(schema as any).logicalType;
}

/** The options every Avro type in the processor is built with. */
export const avroOptions: Partial<avro.ForSchemaOptions> = {
  logicalTypes: { decimal: DecimalType },
  typeHook: (schema: any) => (isLong(schema) ? BigIntLongType : undefined),
};

export function avroType(schema: unknown): avro.Type {
  // A fresh options object each time: avsc keeps its registry of named types in it, and two
  // versions of one schema (before and after a column was added) share their names.
  return avro.Type.forSchema(schema as avro.Schema, { ...avroOptions } as avro.ForSchemaOptions);
}
