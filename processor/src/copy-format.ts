// Decoded Avro values → PostgreSQL COPY text. Every value becomes text here, in exact form:
// decimals stay strings, longs stay BigInt, instants keep microseconds and their zone (UTC).
import { decimalFromBytes } from './decimal';
import type { ValueKind } from './columns';

const MICROS_PER_SECOND = 1_000_000n;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

// Events of a batch mostly share their second: format it once.
let cachedSecond = 0n;
let cachedPrefix = '1970-01-01T00:00:00';

/** Microseconds since the epoch → `2025-01-16T07:59:59.999999Z`. */
export function microsToIso(micros: bigint): string {
  const seconds = floorDiv(micros, MICROS_PER_SECOND);
  const fraction = micros - seconds * MICROS_PER_SECOND;
  if (seconds !== cachedSecond) {
    cachedPrefix = new Date(Number(seconds) * 1000).toISOString().slice(0, -5); // ...T07:59:59
    cachedSecond = seconds;
  }
  return `${cachedPrefix}.${fraction.toString().padStart(6, '0')}Z`;
}

/** Days since the epoch → `YYYY-MM-DD`. */
export function daysToDate(days: number): string {
  return new Date(days * 86_400_000).toISOString().slice(0, 10);
}

/** Microseconds since midnight → `HH:MM:SS.ffffff`. */
export function microsToTime(micros: bigint): string {
  const seconds = micros / MICROS_PER_SECOND;
  const fraction = micros % MICROS_PER_SECOND;
  const hh = (seconds / 3600n).toString().padStart(2, '0');
  const mm = ((seconds / 60n) % 60n).toString().padStart(2, '0');
  const ss = (seconds % 60n).toString().padStart(2, '0');
  return `${hh}:${mm}:${ss}.${fraction.toString().padStart(6, '0')}`;
}

/** JSON that keeps BigInt digits (as numbers in the text, not rounded). */
export function toJson(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') {
      marks.push(v.toString());
      return `\uE000${marks.length - 1}\uE000`;
    }
    if (Buffer.isBuffer(v) || (v && v.type === 'Buffer' && Array.isArray(v.data))) {
      return Buffer.from(v.data ?? v).toString('base64');
    }
    return v;
  });
  return text.replace(/"\uE000(\d+)\uE000"/g, (_m, i) => marks[Number(i)]);
}

const big = (v: unknown): bigint => (typeof v === 'bigint' ? v : BigInt(v as number));

/** One decoded value of the given kind → its PostgreSQL text form (not yet COPY-escaped). */
export function valueToText(kind: ValueKind, value: unknown): string {
  switch (kind) {
    case 'text':
    case 'decimal':
      return value as string;
    case 'bool':
      return value ? 't' : 'f';
    case 'int':
    case 'bigint':
      return String(value);
    case 'float':
      return String(value); // NaN, Infinity and -Infinity are spelled as PostgreSQL reads them
    case 'vdecimal': {
      const v = value as { scale: number; value: Buffer };
      return decimalFromBytes(v.value, Number(v.scale));
    }
    case 'date':
      return daysToDate(Number(value));
    case 'time-ms':
      return microsToTime(big(value) * 1000n);
    case 'time-us':
      return microsToTime(big(value));
    case 'time-ns':
      return microsToTime(big(value) / 1000n);
    case 'ts-ms':
      return microsToIso(big(value) * 1000n);
    case 'ts-us':
      return microsToIso(big(value));
    case 'ts-ns':
      return microsToIso(floorDiv(big(value), 1000n));
    case 'bytes':
      return `\\x${(value as Buffer).toString('hex')}`;
    case 'json':
      return toJson(value);
  }
}

const NEEDS_ESCAPE = /[\\\n\r\t]/;

/** Escapes one field for COPY's text format; null becomes \N. */
export function copyField(text: string | null): string {
  if (text === null) return '\\N';
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

/** A PostgreSQL array literal of text values: {"a","b"}. */
export function textArrayLiteral(items: string[]): string {
  return `{${items.map((s) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}
