// Named errors of the processor: each has a stable `code` that callers and logs can match on.

export class CdcError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A decoded value that the warehouse column cannot hold exactly (out of PostgreSQL's range,
 *  a character jsonb refuses, an unexpected shape): the event is rejected with this reason. */
export class UnrepresentableValueError extends CdcError {
  constructor(readonly detail: string, readonly column?: string) {
    super('unrepresentable_value', column === undefined ? detail : `column ${column}: ${detail}`);
  }

  /** Any error raised while formatting a column's value, as this error naming the column. */
  static inColumn(err: unknown, column: string): UnrepresentableValueError {
    const detail = err instanceof UnrepresentableValueError ? err.detail : `cannot be written: ${(err as Error)?.message ?? String(err)}`;
    return new UnrepresentableValueError(detail, column);
  }
}
