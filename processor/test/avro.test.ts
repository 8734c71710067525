import * as avro from 'avsc';
import { avroType } from '../src/avro';

describe('Avro longs decode to exact BigInts', () => {
  const record = { type: 'record', name: 'R', fields: [{ name: 'n', type: 'long' }, { name: 'm', type: ['null', 'long'] }] };
  // Encoded with avsc's own (number) long type, so the wire bytes are independent of ours.
  const reference = avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'n', type: 'long' }, { name: 'm', type: ['null', 'long'] }] });

  it.each([0, 1, -1, 63, -64, 64, 300, -300, 2 ** 31, -(2 ** 31), 2 ** 48 - 1, 2 ** 48, -(2 ** 49), 2 ** 52, -(2 ** 52)])('%d', (n) => {
    const buf = reference.toBuffer({ n, m: n });
    expect(avroType(record).fromBuffer(buf)).toEqual({ n: BigInt(n), m: BigInt(n) });
  });

  it.each(['9223372036854775807', '-9223372036854775808', '1737014399999999123', '-1737014399999999123'])('%s (beyond 2^53)', (text) => {
    const type = avroType(record);
    const buf = type.toBuffer({ n: BigInt(text), m: null });
    expect(type.fromBuffer(buf)).toEqual({ n: BigInt(text), m: null });
  });

  it('still notices a truncated buffer', () => {
    const type = avroType(record);
    const buf = type.toBuffer({ n: 2n ** 62n, m: 5n });
    expect(() => type.fromBuffer(buf.subarray(0, 4))).toThrow(/truncated/);
  });
});

describe('Avro longs are read straight from the varint', () => {
  const record = { type: 'record', name: 'R', fields: [{ name: 'n', type: 'long' }] };

  // avsc's custom-long hook unpacks each long into an 8-byte Buffer first; that cost about a
  // fifth of decoding, so the processor's long type must not go through it.
  it('does not unpack each long into a Buffer', () => {
    const type = avroType(record);
    const buf = type.toBuffer({ n: 1737014399999999123n });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Tap = require('avsc/lib/utils').Tap;
    const spy = jest.spyOn(Tap.prototype, 'unpackLongBytes');
    try {
      expect(type.fromBuffer(buf)).toEqual({ n: 1737014399999999123n });
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  // Around every length of varint and around 2^53, where the double sum stops being exact.
  const edges: bigint[] = [];
  for (let bits = 0n; bits <= 63n; bits++) {
    for (const d of [-2n, -1n, 0n, 1n]) {
      const v = (1n << bits) + d;
      if (v <= 2n ** 63n - 1n) edges.push(v, -v);
    }
  }
  edges.push(2n ** 52n, 2n ** 52n - 1n, -(2n ** 52n), -(2n ** 52n) - 1n, 4503599627370495n, -4503599627370496n, -(2n ** 63n));

  it('decodes every edge value exactly (wire bytes from a reference BigInt encoder)', () => {
    const type = avroType(record);
    for (const v of edges) {
      // Zigzag varint, written here independently of avsc and of the reader under test.
      let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
      const bytes: number[] = [];
      do {
        let b = Number(u & 0x7fn);
        u >>= 7n;
        if (u > 0n) b |= 0x80;
        bytes.push(b);
      } while (u > 0n);
      expect([v, type.fromBuffer(Buffer.from(bytes))]).toEqual([v, { n: v }]);
    }
  });

  it('decodes random longs exactly', () => {
    const type = avroType(record);
    let x = 0x9e3779b97f4a7c15n;
    for (let i = 0; i < 5000; i++) {
      x = BigInt.asUintN(64, x * 6364136223846793005n + 1442695040888963407n);
      const v = BigInt.asIntN(64, x >> BigInt(i % 64));
      expect(type.fromBuffer(type.toBuffer({ n: v }))).toEqual({ n: v });
    }
  });

  it('still notices a varint cut off at the end of the buffer', () => {
    const type = avroType(record);
    expect(() => type.fromBuffer(Buffer.from([0xff, 0xff]))).toThrow(/truncated/);
  });
});
