// Latency percentiles in constant memory: a long or fast run records millions of statements,
// so values go into log-spaced buckets (about 2% wide) instead of an ever-growing array.

const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);

export class LogHistogram {
  private readonly counts = new Map<number, number>();
  private n = 0;
  private maxValue = 0;

  record(value: number): void {
    if (!(value >= 0) || !Number.isFinite(value)) return;
    const b = value < 1 ? 0 : 1 + Math.floor(Math.log(value) / LOG_GROWTH);
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.n++;
    if (value > this.maxValue) this.maxValue = value;
  }

  get count(): number {
    return this.n;
  }

  get max(): number {
    return this.maxValue;
  }

  /** Upper bound of the bucket holding the q-quantile (q in [0, 1]); 0 when empty. */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (const b of [...this.counts.keys()].sort((x, y) => x - y)) {
      seen += this.counts.get(b)!;
      if (seen >= rank) return Math.min(this.maxValue, b === 0 ? 1 : GROWTH ** b);
    }
    return this.maxValue;
  }
}
