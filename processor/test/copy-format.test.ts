import { copyField, daysToDate, microsToIso, microsToTime, textArrayLiteral, toJson, valueToText } from '../src/copy-format';
import { decimalToBytes } from '../src/decimal';

describe('values to COPY text', () => {
  it('keeps microseconds of instants, before and after the epoch', () => {
    expect(microsToIso(1737014399999999n)).toBe('2025-01-16T07:59:59.999999Z');
    expect(microsToIso(0n)).toBe('1970-01-01T00:00:00.000000Z');
    expect(microsToIso(-1n)).toBe('1969-12-31T23:59:59.999999Z');
  });

  it('maps Debezium temporal kinds', () => {
    expect(valueToText('ts-ms', 1737014399999n)).toBe('2025-01-16T07:59:59.999000Z');
    expect(valueToText('ts-us', 1737014399999999n)).toBe('2025-01-16T07:59:59.999999Z');
    expect(valueToText('ts-ns', 1737014399999999123n)).toBe('2025-01-16T07:59:59.999999Z');
    expect(daysToDate(20104)).toBe('2025-01-16');
    expect(valueToText('date', -1)).toBe('1969-12-31');
    expect(microsToTime(86399999999n)).toBe('23:59:59.999999');
    expect(valueToText('time-ms', 3723004)).toBe('01:02:03.004000');
  });

  it('keeps integers beyond 2^53 exact', () => {
    expect(valueToText('bigint', 9223372036854775807n)).toBe('9223372036854775807');
  });

  it('turns variable-scale decimals into exact text', () => {
    expect(valueToText('vdecimal', { scale: 3, value: decimalToBytes('-12.345', 3) })).toBe('-12.345');
  });

  it('writes bytes as hex and structures as JSON keeping big integers', () => {
    expect(valueToText('bytes', Buffer.from([0, 255]))).toBe('\\x00ff');
    expect(toJson({ a: 12345678901234567890n, b: [1, 'x'] })).toBe('{"a":12345678901234567890,"b":[1,"x"]}');
  });

  it('escapes COPY text', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField('a\tb\nc\\d\re')).toBe('a\\tb\\nc\\\\d\\re');
    expect(copyField('\\N')).toBe('\\\\N');
    expect(textArrayLiteral(['a', 'we"ird\\'])).toBe('{"a","we\\"ird\\\\"}');
  });
});
