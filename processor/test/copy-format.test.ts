import { UnrepresentableValueError } from '../src/errors';
import { copyField, daysToDate, jsonbText, zonedTimestampText, microsToIso, microsToTime, textArrayLiteral, toJson, valueToText } from '../src/copy-format';
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

  it('writes dates and instants before year 1 and after 9999 as PostgreSQL reads them', () => {
    expect(daysToDate(-735160)).toBe('0044-03-15 BC');
    expect(daysToDate(-719163)).toBe('0001-12-31 BC');
    expect(daysToDate(-719162)).toBe('0001-01-01');
    expect(daysToDate(3663382)).toBe('12000-01-01');
    expect(daysToDate(2145042905)).toBe('5874897-12-31');
    expect(daysToDate(-2440588)).toBe('4714-11-24 BC');
    expect(microsToIso(-63517780799500000n)).toBe('0044-03-15T12:00:00.500000Z BC');
    expect(microsToIso(316516204800000000n)).toBe('12000-01-01T00:00:00.000000Z');
    expect(microsToIso(9223372036854775807n)).toBe('294247-01-10T04:00:54.775807Z');
    expect(zonedTimestampText('-0043-03-15T12:00:00.500000Z')).toBe('0044-03-15T12:00:00.500000Z BC');
    expect(zonedTimestampText('+12000-01-01T00:00:00Z')).toBe('12000-01-01T00:00:00Z');
    expect(zonedTimestampText('0000-06-01T00:00:00Z')).toBe('0001-06-01T00:00:00Z BC');
    expect(zonedTimestampText('2025-01-16T07:59:59.999999Z')).toBe('2025-01-16T07:59:59.999999Z');
  });

  it("maps Debezium's infinity sentinels to infinity", () => {
    expect(valueToText('ts-us', 9223372036825200000n)).toBe('infinity');
    expect(valueToText('ts-us', -9223372036832400000n)).toBe('-infinity');
    expect(valueToText('date', -2147472692)).toBe('infinity');
    expect(valueToText('date', -2147472691)).toBe('-infinity');
    expect(valueToText('date', -622191234)).toBe('infinity');
    expect(valueToText('date', -625821272)).toBe('-infinity');
    expect(valueToText('zts', 'infinity')).toBe('infinity');
  });

  it('throws a named error, never a RangeError, for what PostgreSQL cannot hold', () => {
    expect(() => daysToDate(-2440589)).toThrow(UnrepresentableValueError);
    expect(() => daysToDate(2145042906)).toThrow(UnrepresentableValueError);
    expect(() => valueToText('date', 1e12)).toThrow(UnrepresentableValueError);
    expect(() => valueToText('ts-us', -9223372036854775808n)).toThrow(UnrepresentableValueError);
    expect(() => valueToText('time-us', 86400000001n)).toThrow(UnrepresentableValueError);
    expect(valueToText('time-us', 86400000000n)).toBe('24:00:00.000000');
  });

  it('refuses JSON that jsonb cannot hold, keeps the rest byte for byte', () => {
    expect(() => jsonbText('{"a": "\\u0000"}')).toThrow(UnrepresentableValueError);
    expect(() => jsonbText('["\\ud800"]')).toThrow(/surrogate/);
    const ok = ['{"a": "\\\\u0000"}', '["\\ud83d\\ude00"]', '{"b": 1.0}', '"\\\\\\u0041"'];
    for (const t of ok) expect(jsonbText(t)).toBe(t);
  });
});
