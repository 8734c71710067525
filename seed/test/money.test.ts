import { MAX_CENTS, centsToDecimal, decimalToCents, lineAmountCents } from '../lib/money';
import { CATALOGUE, draftOrder } from '../lib/catalog';
import { Prng } from '../lib/prng';

describe('money', () => {
  it.each([
    [0, '0.00'],
    [1, '0.01'],
    [10, '0.10'],
    [99, '0.99'],
    [100, '1.00'],
    [99999, '999.99'],
    [-5, '-0.05'],
    [-12345, '-123.45'],
  ])('formats %p cents as %p', (cents, text) => {
    expect(centsToDecimal(cents)).toBe(text);
  });

  it('formats the largest numeric(12,2) exactly, from a bigint', () => {
    expect(centsToDecimal(MAX_CENTS)).toBe('9999999999.99');
    expect(centsToDecimal(2n ** 70n)).toBe('11805916207174113034.24');
  });

  it('refuses fractional cents and unsafe numbers instead of rounding them silently', () => {
    expect(() => centsToDecimal(0.5)).toThrow(RangeError);
    expect(() => centsToDecimal(2 ** 53)).toThrow(RangeError);
    expect(() => centsToDecimal(NaN)).toThrow(RangeError);
  });

  it('parses decimal text back to the same cents', () => {
    for (const c of [0n, 1n, 99n, 100n, 12345n, -7n, MAX_CENTS]) expect(decimalToCents(centsToDecimal(c))).toBe(c);
    expect(decimalToCents('3.5')).toBe(350n);
    expect(decimalToCents('3')).toBe(300n);
    expect(() => decimalToCents('1.005')).toThrow(RangeError);
    expect(() => decimalToCents('1e3')).toThrow(RangeError);
  });

  it('computes line amounts in integer cents, rounding half up', () => {
    expect(lineAmountCents(1999, 3)).toBe(5997);
    expect(lineAmountCents(99, 1, 25)).toBe(74); // 74.25 → 74
    expect(lineAmountCents(1, 1, 50)).toBe(1); // 0.5 → 1
    expect(lineAmountCents(10, 3, 0)).toBe(30); // 0.1 * 3 is exactly 0.30 here
    expect(() => lineAmountCents(99.5, 1)).toThrow(RangeError);
    expect(() => lineAmountCents(Number(MAX_CENTS), 2)).toThrow(/does not fit/);
  });

  it('only produces amounts that fit numeric(12,2) and have at most two decimals', () => {
    const rng = new Prng(3);
    for (let i = 0; i < 5000; i++) {
      const o = draftOrder(rng, 300);
      expect(Number.isSafeInteger(o.amountCents)).toBe(true);
      expect(centsToDecimal(o.amountCents)).toMatch(/^\d{1,10}\.\d\d$/);
      expect(CATALOGUE.some((p) => p.name === o.productName)).toBe(true);
      expect(o.customerId).toBeGreaterThanOrEqual(1001);
      expect(o.customerId).toBeLessThanOrEqual(1300);
    }
  });
});
