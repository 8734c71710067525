import { waitFor } from '../lib/util';

/** Busy for `ms` of wall time, as a count scanning a large table is. */
function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

describe('waitFor', () => {
  it('waits nine times as long as a slow check took before checking again', async () => {
    const at: number[] = [];
    const ok = await waitFor(async () => {
      at.push(Date.now());
      busy(40);
      return at.length === 2;
    }, 10_000, 10);
    expect(ok).toBe(true);
    // The second check starts after the first one's 40 ms and a pause of at least 9 × 40 ms.
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(40 + 9 * 40 - 5);
  });

  it('checks every everyMs when checks are quick, and gives up at the deadline', async () => {
    let calls = 0;
    const started = Date.now();
    const ok = await waitFor(async () => {
      calls++;
      return false;
    }, 300, 50);
    expect(ok).toBeNull();
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(8);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('does not sleep past the deadline after a slow check', async () => {
    const started = Date.now();
    const ok = await waitFor(async () => {
      busy(100);
      return false;
    }, 150, 10);
    expect(ok).toBeNull();
    // Without the cap the pause after the first check alone would be 900 ms.
    expect(Date.now() - started).toBeLessThan(600);
  });
});
