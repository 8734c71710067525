import { keyText } from '../src/key';
import { decimalToBytes } from '../src/decimal';

const one = (v: unknown) => keyText(['k'], { k: v });

describe('key text', () => {
  it('is distinct for every distinct key value, whatever its type', () => {
    const values: unknown[] = [
      Buffer.from([0x80]), Buffer.from([0x81]), Buffer.from([]), Buffer.from([0x80, 0x81]),
      0n, 1n, -1n, 9223372036854775807n, 12345678901234567890n, 1.5, 1.25,
      '', '1', '-1', 'x\u0001y', 'x', 'a;b', '\uFFFD', 'null', 'z', null, true, false,
      '999.99', '999.990',
      { scale: 2, value: decimalToBytes('1.05', 2) }, { scale: 1, value: decimalToBytes('1.5', 1) },
    ];
    const texts = values.map(one);
    expect(new Set(texts).size).toBe(values.length);
  });

  it('is distinct for composite keys whose parts would join to the same text', () => {
    const cols = ['a', 'b'];
    const keys = [
      { a: 'x\u0001y', b: 'z' }, { a: 'x', b: 'y\u0001z' }, { a: 'xy', b: 'z' }, { a: 'x', b: 'yz' },
      { a: 's1:x', b: '' }, { a: 's1:', b: 'x' }, { a: null, b: 'x' }, { a: 'x', b: null },
      { a: 1n, b: 23n }, { a: 12n, b: 3n }, { a: Buffer.from('ab'), b: Buffer.from('c') }, { a: Buffer.from('a'), b: Buffer.from('bc') },
    ];
    expect(new Set(keys.map((k) => keyText(cols, k))).size).toBe(keys.length);
  });

  it('gives equal keys the same text (numbers as BigInt or number; decimals equal in PostgreSQL)', () => {
    expect(one(5n)).toBe(one(5));
    expect(one(Buffer.from([1, 2]))).toBe(one(Buffer.from([1, 2])));
    expect(one({ scale: 1, value: decimalToBytes('1.0', 1) })).toBe(one({ scale: 2, value: decimalToBytes('1.00', 2) }));
  });
});
