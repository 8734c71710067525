// avsc options for Debezium's Avro: exact longs and exact decimals.
import * as avro from 'avsc';
import { decimalFromBytes, decimalToBytes } from './decimal';

// Debezium's source block carries ts_ns (~1.7e18) and LSNs, and bigint columns may hold any
// int64: a JS number would round them, so every Avro long decodes to a BigInt.
const BigIntLongBase = avro.types.LongType.__with({
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

/**
 * Reads one zigzag varint long at the tap straight into a BigInt. avsc's custom-long hook
 * unpacks every long into a fresh 8-byte Buffer first (`unpackLongBytes`), which cost about a
 * fifth of decoding; here the bytes are summed as a double, exact while the sum stays below
 * 2^53 (every term is a small integer times a power of two), which covers lengths, LSNs,
 * xids and ts_ms/ts_us; only a larger one (ts_ns, big ids) is rebuilt from its bytes as a BigInt.
 * A varint running past the buffer's end stops at it and leaves the tap invalid, so
 * fromBuffer still throws 'truncated buffer'.
 */
export function readLongExact(tap: { buf: Buffer; pos: number }): bigint {
  const buf = tap.buf;
  const start = tap.pos;
  let pos = start;
  let b = buf[pos++];
  let sum = b & 0x7f;
  let scale = 128;
  while (b & 0x80) {
    b = buf[pos++];
    sum += (b & 0x7f) * scale;
    scale *= 128;
  }
  tap.pos = pos;
  if (sum <= Number.MAX_SAFE_INTEGER) return BigInt(sum % 2 === 1 ? -(sum + 1) / 2 : sum / 2);
  let u = 0n;
  for (let i = pos - 1; i >= start; i--) u = (u << 7n) | BigInt(buf[i] & 0x7f);
  u = BigInt.asUintN(64, u);
  return (u >> 1n) ^ -(u & 1n);
}

// The same type with the direct read: avsc's compiled record readers and resolvers call the
// type's `_read`, so an object inheriting everything else from the hooked type is enough.
export const BigIntLongType: avro.Type = Object.freeze(Object.assign(Object.create(BigIntLongBase), { _read: readLongExact }));

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
