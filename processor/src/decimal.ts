// Exact decimal arithmetic on strings and BigInt: money never passes through a JS float.

/** Avro decimal bytes (big-endian two's complement) and a scale → "123.45". */
export function decimalFromBytes(buf: Buffer, scale: number): string {
  let n = 0n;
  for (const byte of buf) n = (n << 8n) | BigInt(byte);
  if (buf.length > 0 && buf[0] & 0x80) n -= 1n << BigInt(8 * buf.length);
  return formatScaled(n, scale);
}

/** "123.45" at scale 2 → big-endian two's complement bytes (the inverse, for encoding test events). */
export function decimalToBytes(value: string, scale: number): Buffer {
  let n = toScaledBigInt(value, scale);
  const bytes: number[] = [];
  // Emit the minimal two's complement form: stop once the remaining value is pure sign extension.
  for (;;) {
    const byte = Number(n & 0xffn);
    bytes.unshift(byte);
    n >>= 8n;
    if ((n === 0n && !(byte & 0x80)) || (n === -1n && byte & 0x80)) break;
  }
  return Buffer.from(bytes);
}

/** An unscaled integer and a scale → its decimal text, e.g. (-5n, 2) → "-0.05". */
export function formatScaled(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  let digits = (negative ? -unscaled : unscaled).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return negative ? `-${digits}` : digits;
}

const DECIMAL_TEXT = /^([+-])?(\d*)(?:\.(\d*))?$/;

/** "12.3" at scale 2 → 1230n. Throws on text that is not a plain decimal or has more fraction digits than the scale. */
export function toScaledBigInt(value: string, scale: number): bigint {
  const m = DECIMAL_TEXT.exec(value.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new Error(`not a decimal: ${JSON.stringify(value)}`);
  const fraction = m[3] ?? '';
  if (fraction.length > scale && /[1-9]/.test(fraction.slice(scale))) {
    throw new Error(`${value} has more than ${scale} fraction digits`);
  }
  const n = BigInt((m[2] || '0') + fraction.slice(0, scale).padEnd(scale, '0'));
  return m[1] === '-' ? -n : n;
}

/** Compares two decimal strings exactly: -1, 0 or 1. */
export function compareDecimal(a: string, b: string): number {
  const scale = Math.max(fractionDigits(a), fractionDigits(b));
  const x = toScaledBigInt(a, scale);
  const y = toScaledBigInt(b, scale);
  return x === y ? 0 : x < y ? -1 : 1;
}

function fractionDigits(s: string): number {
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}
