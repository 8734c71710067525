// Open-loop pacing: unit i is due at i / rate seconds after the start, whatever the database's
// response times, so the offered load is the requested rate and not "as fast as replies come".
// When the generator cannot keep up, the backlog is capped and the excess counted as skipped,
// rather than released later as a burst that would distort freshness measurements.

export class Pacer {
  private issued = 0;
  private skippedUnits = 0;

  /**
   * @param ratePerSec units per second; Infinity means no pacing (as fast as slots allow)
   * @param maxBacklog how many overdue units may accumulate before the rest are skipped
   */
  constructor(
    readonly ratePerSec: number,
    readonly maxBacklog: number,
  ) {
    if (!(ratePerSec > 0)) throw new RangeError(`rate must be positive, got ${ratePerSec}`);
    if (!(maxBacklog >= 1)) throw new RangeError(`maxBacklog must be >= 1, got ${maxBacklog}`);
  }

  /** Units that should have been issued by `elapsedMs`, minus those already issued or skipped. */
  due(elapsedMs: number): number {
    if (this.ratePerSec === Infinity) return Number.MAX_SAFE_INTEGER;
    const target = Math.floor((elapsedMs * this.ratePerSec) / 1000) + 1; // unit 0 is due at t=0
    let owed = target - this.issued - this.skippedUnits;
    if (owed > this.maxBacklog) {
      this.skippedUnits += owed - this.maxBacklog;
      owed = this.maxBacklog;
    }
    return Math.max(0, owed);
  }

  take(n: number): void {
    this.issued += n;
  }

  /** Milliseconds from `elapsedMs` until the next unit is due (0 if one is due now). */
  msUntilNext(elapsedMs: number): number {
    if (this.ratePerSec === Infinity) return 0;
    const nextIndex = this.issued + this.skippedUnits;
    return Math.max(0, (nextIndex * 1000) / this.ratePerSec - elapsedMs);
  }

  get issuedUnits(): number {
    return this.issued;
  }

  get skipped(): number {
    return this.skippedUnits;
  }
}
