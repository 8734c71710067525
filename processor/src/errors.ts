// Named errors of the processor. Each carries a stable `code` that logs and callers can match on
// without parsing messages; the class says whether trouble is worth retrying.

export class CdcError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A reachable registry answered that it has no schema of this id: the message can never be decoded. */
export class UnknownSchemaError extends CdcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SCHEMA_NOT_FOUND', message, options);
  }
}

/** The registry handed out a schema the processor cannot use (not Avro, or Avro that does not parse):
 *  the same answer comes every time, so waiting would stop the stream for good. */
export class UnsupportedSchemaError extends CdcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SCHEMA_UNSUPPORTED', message, options);
  }
}

/** The registry could not give a definite answer (refused, timed out, 5xx, 429, garbled reply):
 *  worth retrying, never a reason to reject a message. */
export class RegistryUnavailableError extends CdcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('REGISTRY_UNAVAILABLE', message, options);
  }
}

/** The registry refused the credentials (401/403): unavailable to decoding like any outage, but at
 *  start a configuration mistake, reported as such. */
export class RegistryRefusedError extends RegistryUnavailableError {}

/** A decoded value that the warehouse column cannot hold exactly (out of PostgreSQL's range,
 *  a character jsonb refuses, an unexpected shape): the event is rejected with this reason. */
export class UnrepresentableValueError extends CdcError {
  constructor(readonly detail: string, readonly column?: string) {
    super('UNREPRESENTABLE_VALUE', column === undefined ? detail : `column ${column}: ${detail}`);
  }

  /** Any error raised while formatting a column's value, as this error naming the column. */
  static inColumn(err: unknown, column: string): UnrepresentableValueError {
    const detail = err instanceof UnrepresentableValueError ? err.detail : `cannot be written: ${(err as Error)?.message ?? String(err)}`;
    return new UnrepresentableValueError(detail, column);
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
