import { backoffDelay, isDataError, retryUntilStopped } from '../src/retry';

describe('backoffDelay: exponential with full jitter, capped', () => {
  it('draws uniformly below base·2^attempt', () => {
    expect(backoffDelay(0, { maxBackoffMs: 10_000 }, () => 0.999)).toBe(99);
    expect(backoffDelay(3, { maxBackoffMs: 10_000 }, () => 0.5)).toBe(400);
    expect(backoffDelay(3, { maxBackoffMs: 10_000 }, () => 0)).toBe(0);
    expect(backoffDelay(2, { maxBackoffMs: 10_000, baseMs: 10 }, () => 0.5)).toBe(20);
  });

  it('never exceeds the cap, however many attempts (no overflow to NaN or Infinity)', () => {
    for (const attempt of [10, 20, 100, 5000]) {
      const d = backoffDelay(attempt, { maxBackoffMs: 10_000 }, () => 0.999999);
      expect(d).toBeLessThan(10_000);
      expect(d).toBeGreaterThan(9_000);
    }
  });

  it('spreads the waits of callers that failed together', () => {
    const waits = new Set(Array.from({ length: 50 }, () => backoffDelay(6, { maxBackoffMs: 10_000 })));
    expect(waits.size).toBeGreaterThan(10);
  });
});

describe('isDataError: about the batch, or about the warehouse being away', () => {
  const pgError = (code: string) => Object.assign(new Error('boom'), { code, severity: 'ERROR' });
  it('PostgreSQL data, integrity and syntax/undefined-column classes are about the data', () => {
    for (const code of ['22007', '22P05', '22003', '23505', '23514', '42703', '42701', '42P01']) expect(isDataError(pgError(code))).toBe(true);
  });
  it('connection, shutdown, resources, serialization and deadlocks are not', () => {
    for (const code of ['08006', '08001', '57P01', '57P03', '53300', '53100', '40001', '40P01', '55P03', 'XX000', '42501']) expect(isDataError(pgError(code))).toBe(false);
    expect(isDataError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:15433'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' }))).toBe(false);
    expect(isDataError(new Error('Connection terminated unexpectedly'))).toBe(false);
    expect(isDataError(new Error('Client has encountered a connection error and is not queryable'))).toBe(false);
    expect(isDataError('not an error')).toBe(false);
  });
  it('an exception of our own code while formatting or staging a value is about the data', () => {
    expect(isDataError(new RangeError('Invalid time value'))).toBe(true);
    expect(isDataError(new TypeError("Cannot read properties of undefined (reading 'toString')"))).toBe(true);
  });
});

describe('retryUntilStopped', () => {
  it('retries until the call succeeds, reporting each failure', async () => {
    const seen: number[] = [];
    let calls = 0;
    const v = await retryUntilStopped(async () => { if (++calls < 3) throw new Error('down'); return 'ok'; }, {
      maxBackoffMs: 2, stop: () => false, onError: (_e, n) => seen.push(n),
    });
    expect(v).toBe('ok');
    expect(seen).toEqual([0, 1]);
  });
  it('gives up with undefined once told to stop', async () => {
    let stop = false;
    const v = await retryUntilStopped(async () => { stop = true; throw new Error('down'); }, { maxBackoffMs: 2, stop: () => stop });
    expect(v).toBeUndefined();
  });
});
