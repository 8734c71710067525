// Kafka Connect's REST API as a user drives it (restart, pause, stop, offsets), and the source
// replication slot as PostgreSQL reports it: what the connector-operations tests need.
import { connectHeaders, sourceAdmin, stackEnv, waitFor } from './stack';

export interface Reply { status: number; json: any }

export async function rest(method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${stackEnv().CONNECT_URL}${path}`, {
    method,
    headers: { ...connectHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let json: any = text;
  try { json = text ? JSON.parse(text) : null; } catch { /* plain text answer */ }
  return { status: res.status, json };
}

/** A call Connect may refuse while its group rebalances (409) or while it starts (5xx, refused): retried, bounded. */
export async function must(method: string, path: string, body?: unknown): Promise<any> {
  return waitFor(`${method} ${path}`, async () => {
    const r = await rest(method, path, body).catch(() => ({ status: 0, json: null }));
    if (r.status >= 200 && r.status < 300) return r.json ?? true;
    if (r.status === 409 || r.status === 0 || r.status >= 500) return false;
    throw new Error(`HTTP ${r.status}: ${JSON.stringify(r.json).slice(0, 500)}`);
  }, 90_000, 300);
}

export interface ConnectorStatus { connector: string; tasks: string[]; trace: string }

export async function status(name: string): Promise<ConnectorStatus | null> {
  const r = await rest('GET', `/connectors/${name}/status`).catch(() => null);
  if (!r || r.status !== 200) return null;
  return {
    connector: r.json.connector.state,
    tasks: r.json.tasks.map((t: any) => t.state),
    trace: r.json.tasks.map((t: any) => t.trace ?? '').join('\n'),
  };
}

/**
 * Waits until the connector and all its tasks are RUNNING; returns the milliseconds since `since`.
 * A FAILED task fails at once with its trace (Debezium shows RUNNING while it retries the
 * replication stream, then FAILED: both count against the bound).
 */
export async function waitRunning(name: string, since = Date.now(), timeoutMs = 90_000): Promise<number> {
  await waitFor(`connector ${name} and its task RUNNING`, async () => {
    const s = await status(name);
    if (s?.tasks.includes('FAILED')) throw new Error(`task FAILED: ${s.trace.slice(0, 800)}`);
    return s !== null && s.connector === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t === 'RUNNING');
  }, timeoutMs, 200);
  return Date.now() - since;
}

export async function waitState(name: string, state: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(`connector ${name} ${state}`, async () => (await status(name))?.connector === state, timeoutMs, 200);
}

export interface SlotInfo { active: boolean; restartLsn: bigint; confirmedFlushLsn: bigint }

/** LSNs as numbers of bytes (BigInt): Connect's offsets carry them that way. */
export async function slot(name: string): Promise<SlotInfo | null> {
  const r = await sourceAdmin().query(
    `SELECT active, (restart_lsn - '0/0'::pg_lsn)::text AS restart, (confirmed_flush_lsn - '0/0'::pg_lsn)::text AS confirmed
       FROM pg_replication_slots WHERE slot_name = $1`, [name]);
  if (!r.rows[0]) return null;
  return { active: r.rows[0].active, restartLsn: BigInt(r.rows[0].restart), confirmedFlushLsn: BigInt(r.rows[0].confirmed) };
}

export const currentLsn = async (): Promise<bigint> =>
  BigInt((await sourceAdmin().query(`SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text AS l`)).rows[0].l);

export const lsnText = (lsn: bigint): string => `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
