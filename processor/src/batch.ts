// Micro-batching: a batch closes at maxEvents, at maxBytes, or lingerMs after its first event,
// whichever comes first. Pure bookkeeping; the timer and the flushing live in pipeline.ts.

export interface BatchLimits {
  maxEvents: number;
  maxBytes: number;
  lingerMs: number;
}

export class Batch<T> {
  readonly items: T[] = [];
  bytes = 0;
  /** When the first item arrived (ms); the linger deadline counts from here. */
  openedAt: number | null = null;

  constructor(private readonly limits: BatchLimits) {}

  add(item: T, bytes: number, now: number): void {
    if (this.openedAt === null) this.openedAt = now;
    this.items.push(item);
    this.bytes += bytes;
  }

  get size(): number {
    return this.items.length;
  }

  /** Full: flush at once rather than wait for the linger time. */
  isFull(): boolean {
    return this.items.length >= this.limits.maxEvents || this.bytes >= this.limits.maxBytes;
  }

  /** Milliseconds until the linger deadline (0 when due); null for an empty batch. */
  dueIn(now: number): number | null {
    if (this.openedAt === null) return null;
    return Math.max(0, this.openedAt + this.limits.lingerMs - now);
  }
}
