import { Pacer } from '../lib/pacing';
import { LogHistogram } from '../lib/histogram';

describe('Pacer', () => {
  it('releases units at the requested rate: unit i is due at i/rate seconds', () => {
    const p = new Pacer(1000, 10_000); // one unit per millisecond
    expect(p.due(0)).toBe(1);
    p.take(1);
    expect(p.due(0.5)).toBe(0);
    expect(p.msUntilNext(0.5)).toBeCloseTo(0.5);
    expect(p.due(10)).toBe(10); // units 1..10
    p.take(10);
    expect(p.due(10)).toBe(0);
    expect(p.issuedUnits).toBe(11);
  });

  it('issues exactly rate × duration units over a run when slots are free', () => {
    const p = new Pacer(250, 10_000);
    let t = 0;
    while (t < 4000) {
      const n = p.due(t);
      p.take(n);
      t += 7; // a coarse, irregular timer still yields the exact count
    }
    expect(p.issuedUnits).toBe(1000);
  });

  it('caps the backlog when the caller cannot keep up, and counts the rest as skipped', () => {
    const p = new Pacer(1000, 50);
    expect(p.due(999)).toBe(50); // 1000 were due
    expect(p.skipped).toBe(950);
    p.take(50);
    expect(p.due(999)).toBe(0);
    expect(p.due(1010)).toBe(11); // back on schedule, no burst
    expect(p.skipped).toBe(950);
  });

  it('does not skip anything while the caller keeps up', () => {
    const p = new Pacer(5000, 100);
    for (let t = 0; t < 2000; t += 1) p.take(p.due(t));
    expect(p.skipped).toBe(0);
    expect(p.issuedUnits).toBe(9_996); // units due at 0, 0.2, …, 1999.0 ms
  });

  it('is unlimited at an infinite rate', () => {
    const p = new Pacer(Infinity, 1);
    expect(p.due(0)).toBeGreaterThan(1e9);
    expect(p.msUntilNext(0)).toBe(0);
  });

  it('rejects nonsense', () => {
    expect(() => new Pacer(0, 1)).toThrow(RangeError);
    expect(() => new Pacer(10, 0)).toThrow(RangeError);
  });
});

describe('LogHistogram', () => {
  it('reports quantiles within its 2% bucket width', () => {
    const h = new LogHistogram();
    for (let i = 1; i <= 10_000; i++) h.record(i);
    expect(h.count).toBe(10_000);
    expect(h.quantile(0.5)).toBeGreaterThanOrEqual(5000);
    expect(h.quantile(0.5)).toBeLessThanOrEqual(5000 * 1.02);
    expect(h.quantile(0.99)).toBeGreaterThanOrEqual(9900);
    expect(h.quantile(0.99)).toBeLessThanOrEqual(9900 * 1.02);
    expect(h.quantile(1)).toBe(10_000);
    expect(h.max).toBe(10_000);
  });

  it('is 0 when empty and ignores invalid values', () => {
    const h = new LogHistogram();
    h.record(NaN);
    h.record(-1);
    expect(h.count).toBe(0);
    expect(h.quantile(0.5)).toBe(0);
  });
});
