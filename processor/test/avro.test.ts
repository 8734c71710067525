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
