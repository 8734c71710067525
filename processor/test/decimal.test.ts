import { compareDecimal, decimalFromBytes, decimalToBytes, formatScaled, toScaledBigInt } from '../src/decimal';

describe('exact decimals', () => {
  it.each([
    ['999.99', 2],
    ['0.01', 2],
    ['-9999999999.99', 2],
    ['9999999999.99', 2],
    ['0.00', 2],
    ['-0.05', 2],
    ['128', 0],
    ['-128', 0],
    ['12345678901234567890.123456789', 9],
  ])('round-trips %s at scale %i through Avro bytes', (text, scale) => {
    expect(decimalFromBytes(decimalToBytes(text, scale), scale)).toBe(text);
  });

  it('reads two-complement bytes as Debezium writes them', () => {
    expect(decimalFromBytes(Buffer.from([0x01, 0x86, 0x9f]), 2)).toBe('999.99'); // 99999
    expect(decimalFromBytes(Buffer.from([0xff]), 2)).toBe('-0.01');
    expect(decimalFromBytes(Buffer.from([0x80]), 0)).toBe('-128');
    expect(decimalFromBytes(Buffer.alloc(0), 2)).toBe('0.00');
  });

  it('formats scaled integers', () => {
    expect(formatScaled(5n, 3)).toBe('0.005');
    expect(formatScaled(-100n, 2)).toBe('-1.00');
  });

  it('refuses text that would lose digits', () => {
    expect(() => toScaledBigInt('1.234', 2)).toThrow(/more than 2 fraction digits/);
    expect(() => toScaledBigInt('abc', 2)).toThrow(/not a decimal/);
    expect(toScaledBigInt('1.230', 2)).toBe(123n);
  });

  it('compares without floats', () => {
    expect(compareDecimal('0.1', '0.10')).toBe(0);
    expect(compareDecimal('-0.01', '0')).toBe(-1);
    expect(compareDecimal('9007199254740993.01', '9007199254740993.00')).toBe(1);
  });
});
