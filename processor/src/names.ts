// Names of the warehouse objects derived from a source table's name. PostgreSQL cuts every
// identifier to 63 bytes (NAMEDATALEN - 1, counted in UTF-8 bytes) without an error, so two
// derived names that differ only past byte 63 would become one object: `<t>_fact_event_uq`
// would be `<t>_fact` for a 58-byte table name, the index would be skipped ("already exists")
// and Debezium's re-sends would land twice. A derived name that would not fit is shortened
// here instead, deterministically: the table name cut at a character boundary, `_` and 8 hex
// digits of the SHA-256 of the whole table name, then the suffix, whole. Names that fit are
// unchanged (analysts query `orders_fact`).
import { createHash } from 'crypto';

export const MAX_IDENTIFIER_BYTES = 63;
const HASH_CHARS = 8;

/** `prefix + table + suffix`, or its shortened form when that exceeds 63 bytes. */
export function derivedName(table: string, suffix = '', prefix = ''): string {
  const plain = `${prefix}${table}${suffix}`;
  if (Buffer.byteLength(plain) <= MAX_IDENTIFIER_BYTES) return plain;
  const hash = createHash('sha256').update(table).digest('hex').slice(0, HASH_CHARS);
  const tail = `_${hash}${suffix}`;
  const room = MAX_IDENTIFIER_BYTES - Buffer.byteLength(prefix) - Buffer.byteLength(tail);
  return `${prefix}${cutBytes(table, Math.max(room, 0))}${tail}`;
}

/** The longest prefix of `text` of at most `max` UTF-8 bytes that does not split a character. */
export function cutBytes(text: string, max: number): string {
  let bytes = 0;
  let out = '';
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max) break;
    bytes += n;
    out += ch;
  }
  return out;
}
