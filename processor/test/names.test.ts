import { MAX_IDENTIFIER_BYTES, cutBytes, derivedName } from '../src/names';

describe('names derived from a table name', () => {
  it('keeps names that fit unchanged', () => {
    expect(derivedName('orders', '_fact')).toBe('orders_fact');
    expect(derivedName('orders', '', '_stage_')).toBe('_stage_orders');
    const exact = 'a'.repeat(MAX_IDENTIFIER_BYTES - 5);
    expect(derivedName(exact, '_fact')).toBe(`${exact}_fact`);
  });

  it('shortens a name that would not fit to 63 bytes, keeping the suffix whole and the names distinct', () => {
    const table = 'a'.repeat(58);
    const suffixes = ['_fact', '_latest', '_history', '_as_of', '_fact_ts_idx', '_fact_event_uq', '_truncates'];
    const names = suffixes.map((s) => derivedName(table, s));
    for (const [i, n] of names.entries()) {
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(MAX_IDENTIFIER_BYTES);
      expect(n.endsWith(suffixes[i])).toBe(true);
    }
    expect(new Set(names).size).toBe(names.length);
    // Deterministic, and two long names that share their first 63 bytes stay apart.
    expect(derivedName(table, '_fact')).toBe(names[0]);
    expect(derivedName(`${'b'.repeat(70)}1`, '_fact')).not.toBe(derivedName(`${'b'.repeat(70)}2`, '_fact'));
  });

  it('counts UTF-8 bytes and never splits a character', () => {
    const table = 'é'.repeat(30); // 60 bytes
    const n = derivedName(table, '_latest');
    expect(Buffer.byteLength(n)).toBeLessThanOrEqual(MAX_IDENTIFIER_BYTES);
    expect(n).toMatch(/^é+_[0-9a-f]{8}_latest$/);
    expect(cutBytes('aé', 2)).toBe('a');
  });
});
