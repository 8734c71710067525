import { progressText, summaryLines } from '../load';
import { LoadSummary } from '../lib/workload';
import { DEFAULT_MIX } from '../lib/mix';

const summary: LoadSummary = {
  elapsedSec: 10,
  targetRate: 5000,
  currentRate: 3000,
  averageRate: 3000,
  committed: { insert: 15000, update: 12000, delete: 3000 },
  total: 30000,
  errors: 0,
  inFlight: 0,
  skipped: 20000,
  reachedRate: false,
  interrupted: false,
  substituted: 0,
  vanished: 0,
  errorSamples: [],
  latencyMs: { p50: 0.5, p95: 3, p99: 12, max: 40 },
  startedAt: new Date(0),
  finishedAt: new Date(10_000),
  settings: { connections: 8, pipeline: 8, txSize: 1, mix: DEFAULT_MIX, seed: 1 },
};

describe('load output', () => {
  it('says clearly when the rate was not reached, and why', () => {
    const last = summaryLines(summary).at(-1)!;
    expect(last).toMatch(/^load: could NOT reach 5,000 changes\/s: averaged 3,000\/s, 20,000 changes skipped/);
  });

  it('confirms the rate when it was reached', () => {
    expect(summaryLines({ ...summary, reachedRate: true, averageRate: 5000, skipped: 0 }).at(-1)).toBe('load: reached the requested rate (5,000/s of 5,000/s)');
  });

  it('lists failures with their counts', () => {
    const lines = summaryLines({ ...summary, reachedRate: true, errors: 3, errorSamples: [{ message: 'write ECONNRESET', count: 3 }] });
    expect(lines).toContain('load: 3 changes failed:');
    expect(lines).toContain('  3 × write ECONNRESET');
  });

  it('shows rate, totals by op, errors and backlog on the progress line', () => {
    const line = progressText(summary);
    expect(line).toContain('3,000/s now');
    expect(line).toContain('(target 5,000)');
    expect(line).toContain('+15,000 ~12,000 -3,000');
    expect(line).toContain('errors 0');
    expect(line).toContain('behind: 20,000 skipped');
  });
});
