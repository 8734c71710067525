import { tableModel } from '../src/columns';
import type { ChangeEvent } from '../src/decode';
import { DEFAULT_PLACEHOLDER, placeholderMatcher, stageText } from '../src/stage';
import { envelopeSchema, keySchema } from './fixtures/debezium';

const fields = [
  { name: 'id', type: 'long' },
  { name: 'doc', type: ['null', 'string'], default: null },
  { name: 'price', type: { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 } },
];
const model = tableModel('docs', envelopeSchema('docs', fields), keySchema('docs', [{ name: 'id', type: 'long' }]));
const ev = (id: bigint, op: ChangeEvent['op'], row: Record<string, unknown>, lsn: bigint): any => ({
  event: { table: 'docs', op, row: { id, ...row }, keyText: String(id), sourceTsMicros: 1737014399999999n, lsn, txId: 5n, model, schemaKey: 'v1' },
  topic: 'dbserver1.public.docs', partition: 0, offset: lsn,
});

describe('staging COPY text', () => {
  it('writes columns in warehouse order, nulls for columns an event lacks, then pipeline columns', () => {
    const { text, unavailable } = stageText([ev(1n, 'c', { doc: 'a\tb', price: '0.01' }, 10n)], ['id', 'doc', 'price', 'dropped_col']);
    expect(text).toBe('1\ta\\tb\t0.01\t\\N\tc\t2025-01-16T07:59:59.999999Z\t10\t5\tdbserver1.public.docs\t0\t10\t0\t\\N\tf\n');
    expect(unavailable).toEqual([]);
  });

  it('replaces a TOAST placeholder with the value of an earlier event of the same key in the batch', () => {
    const { text, unavailable } = stageText([
      ev(1n, 'c', { doc: 'big', price: '1.00' }, 10n),
      ev(1n, 'u', { doc: DEFAULT_PLACEHOLDER, price: '2.00' }, 11n),
    ], ['id', 'doc', 'price']);
    expect(text.split('\n')[1].split('\t').slice(0, 3)).toEqual(['1', 'big', '2.00']);
    expect(unavailable).toEqual([]);
  });

  it('marks a placeholder it cannot resolve, for the merge to fill from the warehouse', () => {
    const { text, unavailable } = stageText([ev(2n, 'u', { doc: DEFAULT_PLACEHOLDER, price: '2.00' }, 11n)], ['id', 'doc', 'price']);
    const fieldsOut = text.trimEnd().split('\t');
    expect(fieldsOut[1]).toBe('\\N');
    expect(fieldsOut[fieldsOut.length - 2]).toBe('{"doc"}');
    expect(fieldsOut[fieldsOut.length - 1]).toBe('f'); // not deferred
    expect(unavailable).toEqual(['doc']);
  });
});

describe('placeholders in every shape Debezium sends', () => {
  const P = DEFAULT_PLACEHOLDER;
  const isP = placeholderMatcher(P);
  it('recognises the text, bytes, text[]/bytea[]/uuid[] lists, int[]/bigint[] byte lists and hstore maps', () => {
    expect(isP(P)).toBe(true);
    expect(isP(Buffer.from(P))).toBe(true);
    expect(isP([P])).toBe(true);
    expect(isP([Buffer.from(P)])).toBe(true);
    expect(isP([...Buffer.from(P)])).toBe(true);
    expect(isP([...Buffer.from(P)].map(BigInt))).toBe(true);
    expect(isP({ [P]: P })).toBe(true);
    expect(isP(JSON.stringify({ [P]: P }))).toBe(true);
    // UUID.nameUUIDFromBytes("__debezium_unavailable_value".getBytes()): MD5, version 3
    expect(isP(['b68a35a7-17ad-35b3-af2a-ae46edb4545a'])).toBe(true);
  });
  it('does not take ordinary values for placeholders', () => {
    for (const v of ['x', [], ['a', P], [1, 2, 3], [...Buffer.from(P)].slice(1), { a: P }, 0, true]) expect(isP(v)).toBe(false);
  });
});
