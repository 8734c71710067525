import { Prng } from '../lib/prng';
import { STATUSES, allowedNext, canTransition, isTerminal, nextStatus, planPath } from '../lib/lifecycle';

describe('order lifecycle', () => {
  it('allows exactly pending → paid → shipped → delivered, and cancelling before shipping', () => {
    expect(allowedNext('pending')).toEqual(['paid', 'cancelled']);
    expect(allowedNext('paid')).toEqual(['shipped', 'cancelled']);
    expect(allowedNext('shipped')).toEqual(['delivered']);
    expect(canTransition('shipped', 'cancelled')).toBe(false);
    expect(canTransition('pending', 'shipped')).toBe(false);
    expect(canTransition('delivered', 'pending')).toBe(false);
  });

  it('treats delivered and cancelled as final', () => {
    expect(STATUSES.filter(isTerminal)).toEqual(['delivered', 'cancelled']);
    expect(() => nextStatus('delivered', new Prng(1))).toThrow(RangeError);
  });

  it('only ever draws an allowed next status, with both outcomes reachable', () => {
    const rng = new Prng(5);
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const to = nextStatus('pending', rng);
      expect(canTransition('pending', to)).toBe(true);
      seen.add(to);
    }
    expect(seen).toEqual(new Set(['paid', 'cancelled']));
  });

  it('plans paths that are valid chains from pending and stop at a final status', () => {
    const rng = new Prng(8);
    for (let i = 0; i < 2000; i++) {
      const path = planPath(rng, 0.7, 0.75);
      let from = 'pending' as (typeof STATUSES)[number];
      for (const s of path) {
        expect(canTransition(from, s)).toBe(true);
        from = s;
      }
      expect(path.length).toBeLessThanOrEqual(3);
      if (path.length === 3) expect(isTerminal(path[2])).toBe(true);
    }
  });

  it('never moves when the first-step probability is 0, always starts when it is 1', () => {
    const rng = new Prng(2);
    for (let i = 0; i < 100; i++) expect(planPath(rng, 0, 1)).toEqual([]);
    for (let i = 0; i < 100; i++) expect(planPath(rng, 1, 0).length).toBe(1);
  });
});
