// Decoded Avro values → PostgreSQL COPY text. Every value becomes text here, in exact form:
// decimals stay strings, longs stay BigInt, instants keep microseconds and their zone (UTC).
import { decimalFromBytes } from './decimal';
import type { ValueKind } from './columns';
import { UnrepresentableValueError } from './errors';

const MICROS_PER_SECOND = 1_000_000n;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

const MICROS_PER_DAY = 86_400n * MICROS_PER_SECOND;

// PostgreSQL's range (proleptic Gregorian, like Debezium's day and microsecond counts):
// date from 4714-11-24 BC to 5874897-12-31, timestamp from 4714-11-24 BC to 294276 AD (above
// any int64 of microseconds). Outside it, COPY would fail the whole batch: reject the event.
const MIN_DAY = -2_440_588;
const MAX_DAY = 2_145_042_905;
const MIN_MICROS = BigInt(MIN_DAY) * MICROS_PER_DAY;

// Debezium's sentinels for PostgreSQL's infinity, read from the connector's output (3.6):
// timestamps carry PGStatement.DATE_POSITIVE/NEGATIVE_INFINITY; dates carry the epoch day of
// LocalDate -5877611-06-21/22 when streamed, and that of java.sql.Date(DATE_*_INFINITY) in a
// snapshot and inside arrays. All lie outside PostgreSQL's range, so they cannot be real values.
const TS_POSITIVE_INFINITY = 9223372036825200000n;
const TS_NEGATIVE_INFINITY = -9223372036832400000n;
const DATE_POSITIVE_INFINITY = new Set([-2147472692, -622191234]);
const DATE_NEGATIVE_INFINITY = new Set([-2147472691, -625821272]);

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** Days since 1970-01-01 → [year (astronomical: 0 is 1 BC), month, day], proleptic Gregorian. */
function civilFromDays(days: number): [number, number, number] {
  // Howard Hinnant's days_from_civil inverse: exact for any integer, no Date and no float.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** `YYYY-MM-DD` and the era suffix PostgreSQL wants for years before 1 (` BC`, 1 BC = year 0). */
function dateParts(days: number): [string, string] {
  const [y, m, d] = civilFromDays(days);
  const year = y > 0 ? y : 1 - y;
  return [`${String(year).padStart(4, '0')}-${pad2(m)}-${pad2(d)}`, y > 0 ? '' : ' BC'];
}

// Events of a batch mostly share their second: format it once.
let cachedSecond: bigint | null = null;
let cachedPrefix = '';
let cachedSuffix = '';

/** Microseconds since the epoch → `2025-01-16T07:59:59.999999Z` (`… BC` before year 1). */
export function microsToIso(micros: bigint): string {
  if (micros < MIN_MICROS) throw new UnrepresentableValueError(`timestamp ${micros} µs since the epoch is before PostgreSQL's earliest (4714-11-24 BC)`);
  const seconds = floorDiv(micros, MICROS_PER_SECOND);
  const fraction = micros - seconds * MICROS_PER_SECOND;
  if (seconds !== cachedSecond) {
    const days = floorDiv(seconds, 86_400n);
    const sod = Number(seconds - days * 86_400n);
    const [date, era] = dateParts(Number(days));
    cachedPrefix = `${date}T${pad2(Math.floor(sod / 3600))}:${pad2(Math.floor(sod / 60) % 60)}:${pad2(sod % 60)}`;
    cachedSuffix = `Z${era}`;
    cachedSecond = seconds;
  }
  return `${cachedPrefix}.${fraction.toString().padStart(6, '0')}${cachedSuffix}`;
}

/** Days since the epoch → `YYYY-MM-DD` (`… BC` before year 1). */
export function daysToDate(days: number): string {
  if (!Number.isInteger(days) || days < MIN_DAY || days > MAX_DAY) {
    throw new UnrepresentableValueError(`date ${days} days since the epoch is outside PostgreSQL's range (4714-11-24 BC to 5874897-12-31)`);
  }
  const [date, era] = dateParts(days);
  return date + era;
}

/** A Debezium date (days), its infinity sentinels included → PostgreSQL date text. */
export function debeziumDate(days: number): string {
  if (DATE_POSITIVE_INFINITY.has(days)) return 'infinity';
  if (DATE_NEGATIVE_INFINITY.has(days)) return '-infinity';
  return daysToDate(days);
}

/** A Debezium timestamp in µs (or ms: the sentinels are the same numbers) → timestamptz text. */
function debeziumMicros(micros: bigint, raw: bigint): string {
  if (raw === TS_POSITIVE_INFINITY) return 'infinity';
  if (raw === TS_NEGATIVE_INFINITY) return '-infinity';
  return microsToIso(micros);
}

/**
 * Debezium's ZonedTimestamp text → PostgreSQL input. Java prints years outside 0000-9999 with a
 * sign (`-0043-03-15T…Z` is 44 BC, `+12000-01-01T…Z`), which PostgreSQL does not read.
 */
export function zonedTimestampText(text: string): string {
  const m = /^([+-]?)(\d{4,})(-.*)$/.exec(text);
  if (!m) return text; // infinity, -infinity
  const year = Number(m[2]) * (m[1] === '-' ? -1 : 1);
  if (year > 0) return `${m[2].replace(/^0+(?=\d{4})/, '')}${m[3]}`;
  return `${String(1 - year).padStart(4, '0')}${m[3]} BC`;
}

/**
 * Debezium's Json text, checked for what jsonb cannot hold: the escape \u0000 and unpaired
 * UTF-16 surrogates (json would keep them, jsonb refuses the whole COPY).
 */
export function jsonbText(text: string): string {
  if (!text.includes('\\u')) return text;
  const escapes = /\\(?:u([0-9a-fA-F]{4})|[^])/g;
  let m: RegExpExecArray | null;
  let pendingHigh = -1;
  while ((m = escapes.exec(text))) {
    const code = m[1] === undefined ? -1 : parseInt(m[1], 16);
    const high = code >= 0xd800 && code <= 0xdbff;
    const low = code >= 0xdc00 && code <= 0xdfff;
    if (pendingHigh >= 0 && !(low && m.index === pendingHigh)) throw new UnrepresentableValueError('JSON with an unpaired \\u surrogate escape cannot be stored as jsonb');
    if (pendingHigh < 0 && low) throw new UnrepresentableValueError('JSON with an unpaired \\u surrogate escape cannot be stored as jsonb');
    pendingHigh = high ? m.index + m[0].length : -1;
    if (code === 0) throw new UnrepresentableValueError('JSON containing \\u0000 cannot be stored as jsonb (PostgreSQL refuses the NUL character)');
  }
  if (pendingHigh >= 0) throw new UnrepresentableValueError('JSON with an unpaired \\u surrogate escape cannot be stored as jsonb');
  return text;
}

/** Microseconds since midnight → `HH:MM:SS.ffffff` (24:00:00 included, as PostgreSQL allows). */
export function microsToTime(micros: bigint): string {
  if (micros < 0n || micros > 86_400n * MICROS_PER_SECOND) throw new UnrepresentableValueError(`time of day ${micros} µs is outside 00:00 to 24:00`);
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

/** One array element → a JSON value: numbers and booleans as such, everything else as its text. */
function elementJson(kind: ValueKind, value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (kind) {
    case 'int':
    case 'bigint':
      return String(value);
    case 'float':
      return Number.isFinite(value) ? String(value) : JSON.stringify(String(value));
    case 'bool':
      return value ? 'true' : 'false';
    case 'bytes':
    case 'json':
      return toJson(value);
    default:
      return JSON.stringify(valueToText(kind, value));
  }
}

/** One decoded value of the given kind → its PostgreSQL text form (not yet COPY-escaped). */
export function valueToText(kind: ValueKind, value: unknown, items?: ValueKind): string {
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
      return debeziumDate(Number(value));
    case 'time-ms':
      return microsToTime(big(value) * 1000n);
    case 'time-us':
      return microsToTime(big(value));
    case 'time-ns':
      return microsToTime(big(value) / 1000n);
    case 'ts-ms':
      return debeziumMicros(big(value) * 1000n, big(value));
    case 'ts-us':
      return debeziumMicros(big(value), big(value));
    case 'ts-ns':
      return microsToIso(floorDiv(big(value), 1000n));
    case 'bytes':
      return `\\x${(value as Buffer).toString('hex')}`;
    case 'zts':
      return zonedTimestampText(value as string);
    case 'jsontext':
      return jsonbText(value as string);
    case 'json':
      if (items && Array.isArray(value)) return `[${value.map((v) => elementJson(items, v)).join(',')}]`;
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
