// A writer lane: one open micro-batch, one warehouse connection, one transaction at a time.
// The pipeline gives each partition to one lane, so a partition's events stay in order while
// lanes write side by side (their partitions, offsets rows and keys are disjoint).
import { Batch, type BatchLimits } from './batch';
import type { Logger } from './log';
import type { BatchItem, BatchResult, WarehouseWriter } from './writer';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface LaneHooks {
  written(items: BatchItem[], result: BatchResult, seconds: number): void;
  /** A write failed, or succeeded: the pipeline pauses fetching, or resumes once no lane fails. */
  failing(): void;
  recovered(): void;
  stopping(): boolean;
  backoff(attempt: number): number;
  writeError(): void;
}

export class Lane {
  private batch: Batch<BatchItem>;
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  failingSince: number | null = null;

  constructor(
    readonly id: number,
    private readonly limits: BatchLimits,
    private readonly writer: WarehouseWriter,
    private readonly hooks: LaneHooks,
    private readonly log: Logger,
  ) {
    this.batch = new Batch(limits);
  }

  /** Adds a message to the open batch; waits (heartbeating) while a full batch waits for the writer.
   *  False when the pipeline is stopping and the message was not taken. */
  async add(item: BatchItem, bytes: number, heartbeat: () => Promise<void>): Promise<boolean> {
    while (this.batch.isFull()) {
      if (!this.flushing) this.flush();
      await Promise.race([this.flushing, sleep(2000)]);
      await heartbeat().catch(() => undefined);
      if (this.hooks.stopping()) return false;
    }
    this.batch.add(item, bytes, Date.now());
    if (this.batch.isFull()) this.flush();
    else if (this.batch.size === 1) this.armTimer();
    return true;
  }

  /** A rebalance: the open batch is dropped (its messages are read again from the stored offsets). */
  drop(): number {
    const dropped = this.batch.size;
    this.batch = new Batch(this.limits);
    this.clearTimer();
    return dropped;
  }

  /** Shutdown: the write under way finishes, then what is open is written once more (or rolled back). */
  async drain(): Promise<void> {
    this.clearTimer();
    if (this.flushing) await this.flushing;
    if (this.batch.size) {
      const batch = this.batch;
      this.batch = new Batch(this.limits);
      await this.writeWithRetry(batch.items);
    }
    await this.writer.close();
  }

  private armTimer(): void {
    this.clearTimer();
    const due = this.batch.dueIn(Date.now());
    if (due !== null) this.timer = setTimeout(() => this.flush(), due);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Starts writing the open batch unless a write is under way (which re-checks when done). */
  private flush(): void {
    if (this.flushing || this.batch.size === 0) return;
    const batch = this.batch;
    this.batch = new Batch(this.limits);
    this.clearTimer();
    this.flushing = this.writeWithRetry(batch.items).finally(() => {
      this.flushing = null;
      const due = this.batch.dueIn(Date.now());
      if (this.batch.isFull() || due === 0) this.flush();
      else if (due !== null) this.armTimer();
    });
  }

  private async writeWithRetry(items: BatchItem[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const started = process.hrtime.bigint();
      try {
        const result = await this.writer.write(items);
        if (this.failingSince !== null) this.log.info('warehouse writes recovered', { lane: this.id, afterMs: Date.now() - this.failingSince });
        this.failingSince = null;
        this.hooks.recovered();
        this.hooks.written(items, result, Number(process.hrtime.bigint() - started) / 1e9);
        return;
      } catch (err) {
        this.hooks.writeError();
        await this.writer.reset();
        if (this.failingSince === null) this.failingSince = Date.now();
        this.hooks.failing();
        if (this.hooks.stopping() && attempt >= 2) {
          this.log.error('shutting down with a batch unwritten; it is read again on the next start', { lane: this.id, error: err, messages: items.length });
          return;
        }
        this.log.warn('writing a batch failed; retrying', { lane: this.id, error: err, attempt, messages: items.length });
        await sleep(this.hooks.backoff(attempt));
      }
    }
  }
}
