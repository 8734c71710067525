// The identity of a row's primary key as one string, for the processor's own bookkeeping (the
// writer's in-batch de-duplication, the stage's per-key TOAST tracking). It must be injective:
// two keys the source tells apart must never share a text, or distinct rows are dropped as
// duplicates. `String(value)` is not: every invalid UTF-8 byte of a bytea becomes U+FFFD, and a
// separator inside a string can make two composite keys read the same.
import { decimalFromBytes } from './decimal';

/** One key value → a self-delimiting text: a type tag, then the length where it may vary. */
export function keyPart(value: unknown): string {
  if (value === null || value === undefined) return 'z';
  if (typeof value === 'bigint') return `i${value};`;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? `i${value};` : `n${value};`;
  if (typeof value === 'boolean') return value ? 'T' : 'F';
  if (typeof value === 'string') return `s${value.length}:${value}`;
  if (Buffer.isBuffer(value)) return `x${value.toString('hex')};`;
  if (Array.isArray(value)) return `a${value.length}:${value.map(keyPart).join('')}`;
  if (typeof value === 'object') {
    const v = value as Record<string, unknown>;
    // Debezium's VariableScaleDecimal: {scale, value}. PostgreSQL's numeric equality ignores
    // trailing zeros (1.0 = 1.00), so the key text does too.
    if (Buffer.isBuffer(v.value) && v.scale !== undefined && Object.keys(v).length === 2) {
      return `d${normalizeDecimal(decimalFromBytes(v.value, Number(v.scale)))};`;
    }
    const entries = Object.keys(v).sort().map((k) => `${keyPart(k)}${keyPart(v[k])}`);
    return `o${entries.length}:${entries.join('')}`;
  }
  const text = String(value);
  return `?${text.length}:${text}`;
}

function normalizeDecimal(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** The key columns of a decoded key record, in key order → one injective text. */
export function keyText(keyColumns: readonly string[], keyRecord: Record<string, unknown>): string {
  let out = '';
  for (const k of keyColumns) out += keyPart(keyRecord[k]);
  return out;
}
