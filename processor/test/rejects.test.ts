import { RejectLog } from '../src/rejects';

describe('which rejects are logged', () => {
  const typeChange = { table: 'orders', stage: 'schema' as const, reason: 'column quantity of orders changed type from integer to bigint' };

  it('logs the first of a reason, then one line a minute with the count of the same since', () => {
    const log = new RejectLog(60_000);
    const t0 = 1_000_000;
    expect(log.take(typeChange, t0)).toEqual({ notLoggedSince: 0 });
    for (let i = 1; i <= 500; i++) expect(log.take(typeChange, t0 + i * 100)).toBeNull();
    expect(log.take(typeChange, t0 + 60_000)).toEqual({ notLoggedSince: 500 });
    expect(log.take(typeChange, t0 + 60_001)).toBeNull();
  });

  it('keeps reasons, stages and tables apart', () => {
    const log = new RejectLog(60_000);
    expect(log.take(typeChange, 0)).not.toBeNull();
    expect(log.take({ ...typeChange, table: 'items' }, 1)).not.toBeNull();
    expect(log.take({ ...typeChange, stage: 'validate' }, 2)).not.toBeNull();
    expect(log.take({ ...typeChange, reason: 'amount: below min 0' }, 3)).not.toBeNull();
    expect(log.take(typeChange, 4)).toBeNull();
  });
});
