// Money never passes through a JS float: amounts are integer cents in the generator and a
// decimal string on the wire (pg sends strings as text, PostgreSQL parses them as numeric),
// so 0.1 + 0.2 problems cannot reach the source table.

/** Largest amount numeric(12,2) can hold, in cents: 9,999,999,999.99. */
export const MAX_CENTS = 999_999_999_999n;

export function centsToDecimal(cents: number | bigint): string {
  if (typeof cents === 'number' && !Number.isSafeInteger(cents)) {
    throw new RangeError(`cents must be a safe integer, got ${cents}`);
  }
  const c = BigInt(cents);
  const neg = c < 0n;
  const abs = neg ? -c : c;
  const units = abs / 100n;
  const frac = (abs % 100n).toString().padStart(2, '0');
  return `${neg ? '-' : ''}${units}.${frac}`;
}

/** Parses a decimal string with at most two fraction digits into cents; rejects anything else. */
export function decimalToCents(text: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) throw new RangeError(`not a decimal amount with at most 2 fraction digits: '${text}'`);
  const cents = BigInt(m[2]) * 100n + BigInt((m[3] ?? '').padEnd(2, '0'));
  return m[1] === '-' ? -cents : cents;
}

/** Price × quantity with an optional whole-percent discount, rounded half-up to the cent. */
export function lineAmountCents(unitCents: number, quantity: number, discountPercent = 0): number {
  for (const [name, v] of [['unitCents', unitCents], ['quantity', quantity], ['discountPercent', discountPercent]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
  }
  if (discountPercent > 100) throw new RangeError(`discountPercent must be at most 100, got ${discountPercent}`);
  const gross = BigInt(unitCents) * BigInt(quantity);
  const net = (gross * BigInt(100 - discountPercent) + 50n) / 100n;
  if (net > MAX_CENTS) throw new RangeError(`amount ${centsToDecimal(net)} does not fit numeric(12,2)`);
  return Number(net);
}
