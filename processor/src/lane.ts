// A writer lane: one open micro-batch, one warehouse connection, one transaction at a time.
// The pipeline gives each partition to one lane, so a partition's events stay in order while
// lanes write side by side (their partitions, offsets rows and keys are disjoint).
import { Batch, type BatchLimits } from './batch';
import { OffsetGapError, type OffsetGap } from './errors';
import type { Logger } from './log';
import { tpKey } from './offsets';
import { isDataError, sleep } from './retry';
import type { BatchItem, BatchResult, WarehouseWriter } from './writer';

/** Attempts at a batch that fails on its data before it is split to find the culprit: a few,
 *  in case the error was not deterministic after all. */
export const DATA_ATTEMPTS = 3;

export interface LaneHooks {
  written(items: BatchItem[], result: BatchResult, seconds: number): void;
  /** A write failed, or succeeded: the pipeline pauses fetching, or resumes once no lane fails. */
  failing(): void;
  recovered(): void;
  stopping(): boolean;
  backoff(attempt: number): number;
  writeError(): void;
  /** These partitions do not continue where the warehouse stands: read them again from there. */
  gap(gaps: OffsetGap[]): void;
}

export class Lane {
  private batch: Batch<BatchItem>;
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  failingSince: number | null = null;
  /** The batch being written (until it landed or was given up). */
  private writing: BatchItem[] = [];

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
  async add(item: BatchItem, bytes: number, heartbeat: () => Promise<void>, current: () => boolean = () => true): Promise<boolean> {
    while (this.batch.isFull()) {
      if (!this.flushing) this.flush();
      await Promise.race([this.flushing, sleep(2000)]);
      await heartbeat().catch(() => undefined);
      if (this.hooks.stopping()) return false;
    }
    // The partition may have been sent back to its stored offset while we waited.
    if (!current()) return false;
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

  /** Where the batch being written, or else the open one, continues a partition from
   *  (undefined: nothing unwritten for it). */
  pendingFrom(key: string): bigint | undefined {
    const of = (items: BatchItem[]) => items.find((i) => tpKey(i.topic, i.partition) === key);
    const first = of(this.writing) ?? of(this.batch.items);
    return first === undefined ? undefined : (first.from ?? first.offset);
  }

  /** Drops the open messages of these partitions (they are read again from the stored offset). */
  dropPartitions(keys: ReadonlySet<string>): number {
    const kept = this.batch.items.filter((i) => !keys.has(tpKey(i.topic, i.partition)));
    const dropped = this.batch.size - kept.length;
    if (dropped === 0) return 0;
    const batch = new Batch<BatchItem>(this.limits);
    // The linger clock keeps running from the first message that is still there.
    const now = Date.now();
    for (const i of kept) batch.add(i, 0, this.batch.openedAt ?? now);
    batch.bytes = kept.length ? Math.round((this.batch.bytes * kept.length) / this.batch.size) : 0;
    this.batch = batch;
    if (batch.size === 0) this.clearTimer();
    return dropped;
  }

  /** Shutdown: the write under way finishes, then what is open is written once more (or rolled back). */
  async drain(): Promise<void> {
    this.clearTimer();
    if (this.flushing) await this.flushing;
    // The write that ended may have armed the linger timer for the open batch, written here.
    this.clearTimer();
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

  /**
   * Writes a batch until it lands. A warehouse that is away or busy is waited for (consumption
   * pauses, retries without end). A batch that fails on its data is tried a few times, then
   * split to put the offending events into cdc.rejected_events and land the rest. Partitions
   * that do not continue where the warehouse stands leave the batch and are read again.
   */
  private async writeWithRetry(items: BatchItem[]): Promise<void> {
    this.writing = items;
    try {
      await this.writeUntilLanded(items);
    } finally {
      this.writing = [];
    }
  }

  private async writeUntilLanded(items: BatchItem[]): Promise<void> {
    let dataFailures = 0;
    for (let attempt = 0; items.length; ) {
      try {
        await this.writeOnce(items);
        return;
      } catch (err) {
        if (err instanceof OffsetGapError) {
          items = this.leaveGaps(items, err);
          continue;
        }
        this.hooks.writeError();
        if (isDataError(err) && ++dataFailures >= DATA_ATTEMPTS) {
          this.log.warn('a batch keeps failing on its data; isolating the events at fault', { lane: this.id, error: err, messages: items.length });
          try {
            await this.isolate(items, err);
            return;
          } catch (again) {
            if (again instanceof OffsetGapError) {
              items = this.leaveGaps(items, again);
              continue;
            }
            err = again;
          }
        }
        if (isDataError(err)) {
          // The session rolled back and is usable: no reconnect, no pause of consumption.
          this.log.warn('writing a batch failed on its data; retrying', { lane: this.id, error: err, attempt: dataFailures, messages: items.length });
          await sleep(this.hooks.backoff(dataFailures - 1));
          continue;
        }
        await this.writer.reset();
        if (this.failingSince === null) this.failingSince = Date.now();
        this.hooks.failing();
        if (this.hooks.stopping() && attempt >= 2) {
          this.log.error('shutting down with a batch unwritten; it is read again on the next start', { lane: this.id, error: err, messages: items.length });
          return;
        }
        this.log.warn('writing a batch failed; retrying', { lane: this.id, error: err, attempt, messages: items.length });
        await sleep(this.hooks.backoff(attempt++));
      }
    }
  }

  /** One transaction; on success the pipeline learns what was written. */
  private async writeOnce(items: BatchItem[]): Promise<void> {
    const started = process.hrtime.bigint();
    const result = await this.writer.write(items);
    if (this.failingSince !== null) this.log.info('warehouse writes recovered', { lane: this.id, afterMs: Date.now() - this.failingSince });
    this.failingSince = null;
    this.hooks.recovered();
    this.hooks.written(items, result, Number(process.hrtime.bigint() - started) / 1e9);
  }

  /** Takes the partitions of a gap out of the batch and out of the open one, and has the
   *  pipeline read them again from the warehouse's position. Returns what is left to write. */
  private leaveGaps(items: BatchItem[], err: OffsetGapError): BatchItem[] {
    const keys = new Set(err.gaps.map((g) => tpKey(g.topic, g.partition)));
    const left = items.filter((i) => !keys.has(tpKey(i.topic, i.partition)));
    const dropped = items.length - left.length + this.dropPartitions(keys);
    this.log.warn('partitions do not continue where the warehouse stands; reading them again from the stored offset', { lane: this.id, gaps: err.gaps.map((g) => ({ ...g, stored: g.stored.toString(), first: g.first.toString() })), dropped });
    this.hooks.gap(err.gaps);
    return left;
  }

  /**
   * Bisects a batch that fails on its data: each half is written on its own, in order (so every
   * partition's offsets keep moving forward), and a half that fails is split again, down to the
   * single events at fault, which are stored as rejects with the error. Errors that are not about
   * the data (the warehouse went away meanwhile) are thrown to the caller's retrying.
   */
  private async isolate(items: BatchItem[], cause: unknown): Promise<void> {
    if (items.length === 1) return this.rejectOne(items[0], cause);
    const mid = items.length >> 1;
    for (const part of [items.slice(0, mid), items.slice(mid)]) {
      try {
        await this.writeOnce(part);
      } catch (err) {
        if (!isDataError(err)) throw err;
        await this.isolate(part, err);
      }
    }
  }

  private async rejectOne(item: BatchItem, cause: unknown): Promise<void> {
    const reason = describeError(cause);
    this.log.error('event cannot be loaded; stored in cdc.rejected_events', { lane: this.id, topic: item.topic, partition: item.partition, offset: item.offset.toString(), reason });
    try {
      await this.writeOnce([{ ...item, loadError: reason }]);
    } catch (err) {
      if (!isDataError(err)) throw err;
      // The payload itself may be what the warehouse refuses (a NUL in JSON): keep the raw bytes only.
      const d = item.decoded;
      const table = d.kind === 'event' ? d.event.table : d.kind === 'reject' ? d.table : '';
      await this.writeOnce([{ ...item, loadError: reason, decoded: { kind: 'reject', stage: 'schema', table, reason } }]);
    }
  }
}

/** The warehouse's error as a reject reason: message, SQLSTATE and detail when there are. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { code?: unknown; detail?: unknown; column?: unknown };
  const parts = [`${err.name === 'error' ? '' : `${err.name}: `}${err.message}`];
  if (typeof e.code === 'string') parts.push(`SQLSTATE ${e.code}`);
  if (typeof e.detail === 'string' && e.detail) parts.push(e.detail);
  return parts.join('; ');
}
