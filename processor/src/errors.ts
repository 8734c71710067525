// Named errors of the processor, each with a stable `code` (logs, tests, metrics).

export class CdcError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface OffsetGap {
  topic: string;
  partition: number;
  /** The warehouse's position: the batch must continue from here. */
  stored: bigint;
  /** The offset the batch's events of that partition start at, above `stored`. */
  first: bigint;
}

/**
 * A batch would leave a hole in a partition: its events start past the stored offset (an
 * earlier batch was lost: abandoned at shutdown, or a commit the warehouse lost in a crash).
 * Those partitions must be read again from the stored offset; nothing of the batch was written.
 */
export class OffsetGapError extends CdcError {
  constructor(readonly gaps: OffsetGap[]) {
    super('OFFSET_GAP', `batch starts past the stored offset: ${gaps.map((g) => `${g.topic}[${g.partition}] stored ${g.stored}, batch from ${g.first}`).join('; ')}`);
  }
}
