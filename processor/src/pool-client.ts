// A client checked out of a pg Pool, safely. While checked out, pg-pool leaves the client without
// an 'error' listener: a warehouse that ends the session between two statements (a restart,
// pg_terminate_backend) would raise an unhandled 'error' event and end the process. Here it fails
// the work instead, with the session's own error, and the broken client is dropped, not pooled.
import type { Pool, PoolClient } from 'pg';

/** Runs `fn` on a checked-out client; `lost()` tells whether the session has ended meanwhile. */
export async function withClient<T>(pool: Pool, fn: (c: PoolClient, lost: () => Error | undefined) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let lost: Error | undefined;
  const onError = (err: Error) => { lost ??= err; };
  c.on('error', onError);
  try {
    return await fn(c, () => lost);
  } catch (err) {
    throw lost ?? err;
  } finally {
    c.removeListener('error', onError);
    c.release(lost);
  }
}

/** One transaction on a checked-out client (withClient). */
export function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, async (c, lost) => {
    await c.query('BEGIN');
    try {
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      if (!lost()) await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}
