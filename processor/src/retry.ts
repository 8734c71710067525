// Retrying: how long to wait before the next attempt, and which failures are worth retrying
// as they are. One helper for every loop that waits for the warehouse, the registry or Kafka.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface BackoffOptions {
  /** Longest wait (config retry.maxBackoffMs). */
  maxBackoffMs: number;
  /** The ceiling of the first wait; it doubles with each attempt. */
  baseMs?: number;
}

/**
 * Exponential backoff with full jitter: a uniform wait in [0, min(max, base·2^attempt)).
 * Jitter spreads the retries of lanes and instances that failed together (a warehouse restart),
 * so they do not all knock at the same instant.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const base = opts.baseMs ?? 100;
  // 2^attempt overflows to Infinity for large attempts; min() keeps the cap.
  const ceiling = Math.min(opts.maxBackoffMs, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * Calls `attempt` until it succeeds, waiting a backoff between failures. `onError` sees each
 * failure; `stop()` ends the retrying (undefined is returned); `between` runs after each wait
 * (a consumer heartbeat).
 */
export async function retryUntilStopped<T>(
  attempt: (n: number) => Promise<T>,
  opts: BackoffOptions & { stop: () => boolean; onError?: (err: unknown, n: number) => void; between?: () => Promise<void> },
): Promise<T | undefined> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (opts.stop()) return undefined;
      opts.onError?.(err, n);
      await sleep(backoffDelay(n, opts));
      await opts.between?.().catch(() => undefined);
      if (opts.stop()) return undefined;
    }
  }
}

/** SQLSTATE classes about the data or the statement, not the connection: retrying the same
 *  batch gives the same error. 22 data exception, 23 integrity constraint, 42 syntax error or
 *  access rule (undefined/duplicate column, …), 0A feature not supported, 2200x/22P0x inside 22. */
const DATA_CLASSES = new Set(['22', '23', '42', '0A']);
/** In those classes, but about the setup: a missing grant is fixed by an operator, and
 *  rejecting every event meanwhile would empty the stream into cdc.rejected_events. */
const NOT_DATA = new Set(['42501']);

/** Whether a failed write is about the data (deterministic: isolate and reject the culprit)
 *  rather than the warehouse being away or busy (wait and retry as it is). */
export function isDataError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: unknown; severity?: unknown; errno?: unknown; syscall?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  // A PostgreSQL error: five-character SQLSTATE (pg's DatabaseError carries `severity`).
  if (code && /^[0-9A-Z]{5}$/.test(code) && e.severity !== undefined) return DATA_CLASSES.has(code.slice(0, 2)) && !NOT_DATA.has(code);
  // Sockets, DNS, timeouts (ECONNREFUSED, ETIMEDOUT, …) and pg's own connection failures.
  if (e.errno !== undefined || e.syscall !== undefined || (code && /^E[A-Z]+$/.test(code))) return false;
  if (/connect|terminat|closed|not queryable|timeout|socket|ended/i.test(e.message)) return false;
  // Any other exception (a RangeError while formatting a value, a TypeError while staging) is
  // thrown by our code for this batch's values.
  return true;
}
