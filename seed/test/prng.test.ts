import { Prng } from '../lib/prng';
import { buildSeedPlan, SEED_DEFAULTS, summarizePlan } from '../lib/seedplan';

const take = (rng: Prng, n: number) => Array.from({ length: n }, () => rng.nextUint32());

describe('Prng', () => {
  it('gives the same sequence for the same seed', () => {
    expect(take(new Prng(42), 100)).toEqual(take(new Prng(42), 100));
  });

  it('gives different sequences for different seeds, including seeds beyond 32 bits', () => {
    expect(take(new Prng(1), 10)).not.toEqual(take(new Prng(2), 10));
    expect(take(new Prng(5), 10)).not.toEqual(take(new Prng(5 + 2 ** 32), 10));
  });

  it('is pinned: these values must never change, or every --seed changes its data', () => {
    expect(take(new Prng(1), 4)).toEqual([1828152527, 3394835397, 2967886022, 2251045104]);
  });

  it('keeps int() inside its inclusive bounds and reaches both ends', () => {
    const rng = new Prng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = rng.int(3, 6);
      expect(v).toBeGreaterThanOrEqual(3);
      expect(v).toBeLessThanOrEqual(6);
      seen.add(v);
    }
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
  });

  it('next() stays in [0, 1)', () => {
    const rng = new Prng(3);
    for (let i = 0; i < 10_000; i++) {
      const v = rng.next();
      expect(v >= 0 && v < 1).toBe(true);
    }
  });

  it('weighted() follows the weights and never picks a zero weight', () => {
    const rng = new Prng(11);
    const counts = { a: 0, b: 0, z: 0 };
    for (let i = 0; i < 20_000; i++) counts[rng.weighted([['a', 3], ['z', 0], ['b', 1]] as const)]++;
    expect(counts.z).toBe(0);
    expect(counts.a / counts.b).toBeGreaterThan(2.6);
    expect(counts.a / counts.b).toBeLessThan(3.4);
  });

  it('rejects bad input', () => {
    expect(() => new Prng(1.5)).toThrow(RangeError);
    expect(() => new Prng(1).int(5, 4)).toThrow(RangeError);
    expect(() => new Prng(1).pick([])).toThrow(RangeError);
    expect(() => new Prng(1).weighted([['x', 0]])).toThrow(RangeError);
  });
});

describe('seed plan', () => {
  it('is fully determined by the seed', () => {
    const a = buildSeedPlan({ ...SEED_DEFAULTS, seed: 9 });
    const b = buildSeedPlan({ ...SEED_DEFAULTS, seed: 9 });
    expect(a).toEqual(b);
    expect(buildSeedPlan({ ...SEED_DEFAULTS, seed: 10 })).not.toEqual(a);
  });

  it('has the requested size and a few hundred customers, and moves a share of orders', () => {
    const plan = buildSeedPlan({ ...SEED_DEFAULTS, seed: 1 });
    const s = summarizePlan(plan);
    expect(s.orders).toBe(500);
    expect(s.customersUsed).toBeGreaterThan(100);
    expect(s.customersUsed).toBeLessThanOrEqual(300);
    expect(s.final.pending).toBeGreaterThan(50); // roughly 30% stay pending
    expect(s.final.pending).toBeLessThan(250);
    expect(s.final.delivered).toBeGreaterThan(0);
    expect(s.final.cancelled).toBeGreaterThan(0);
    expect(Object.values(s.final).reduce((x, y) => x + y, 0)).toBe(500);
  });

  it('puts the n-th step of every order in round n, so each step is its own transaction', () => {
    const plan = buildSeedPlan({ ...SEED_DEFAULTS, seed: 4 });
    plan.rounds.forEach((members, round) => {
      for (const i of members) expect(plan.orders[i].path.length).toBeGreaterThan(round);
    });
    const steps = plan.orders.reduce((n, o) => n + o.path.length, 0);
    expect(plan.rounds.reduce((n, r) => n + r.length, 0)).toBe(steps);
  });
});
