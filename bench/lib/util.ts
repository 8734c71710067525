// Small helpers of the benchmark: logging, waiting, database URLs, Connect's REST API.
import { Client } from 'pg';
import { authHeaders, credentialsFromEnv, type BasicCredentials } from '../../processor/src/rest-auth';

const T0 = Date.now();

export function log(msg: string): void {
  process.stdout.write(`[bench ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes (then null). Between two
 * checks it waits `everyMs`, and at least nine times as long as the check took: a check that
 * counts a drain's rows in a table grown to 300,000 took 0.5 s of a core every 250 ms, taken from
 * the system it measured on a two-core machine. So a check uses at most a tenth of a core.
 */
export async function waitFor<T>(check: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const started = Date.now();
    const v = await check();
    if (v) return v;
    const now = Date.now();
    if (now >= deadline) return null;
    await sleep(Math.min(Math.max(everyMs, 9 * (now - started)), Math.max(0, deadline - now)));
  }
}

/** The same connection URL on another database. */
export function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export function urlParts(url: string): { host: string; port: number; user: string; password: string; db: string } {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    db: decodeURIComponent(u.pathname.slice(1)),
  };
}

export async function connect(url: string, appName = 'cdc-bench'): Promise<Client> {
  // No parallel workers: the bench's counts would take two more processes' CPU from the systems.
  const c = new Client({ connectionString: url, application_name: appName, connectionTimeoutMillis: 10_000, options: '-c max_parallel_workers_per_gather=0' });
  c.on('error', () => undefined); // a dropped connection shows at its next query
  await c.connect();
  await c.query("SET TIME ZONE 'UTC'");
  return c;
}

/** SQL string literal. */
export const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

export class ConnectRest {
  private readonly auth: Record<string, string>;

  /** Credentials: CONNECT_USERNAME / CONNECT_PASSWORD of `make env` (SECURITY=on), unless given. */
  constructor(private readonly base: string, creds: BasicCredentials | null = credentialsFromEnv(process.env, 'CONNECT')) {
    this.auth = authHeaders(creds);
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { ...this.auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, json };
  }

  /** A call that Connect may refuse while its group rebalances (409): retried for a while. */
  async must(method: string, path: string, body?: unknown, ok = [200, 201, 202, 204]): Promise<any> {
    for (let i = 0; ; i++) {
      const r = await this.call(method, path, body);
      if (ok.includes(r.status)) return r.json;
      if (i >= 60 || (r.status !== 409 && r.status < 500)) {
        throw new Error(`Kafka Connect ${method} ${path}: HTTP ${r.status} ${typeof r.json === 'string' ? r.json : JSON.stringify(r.json)}`.slice(0, 600));
      }
      await sleep(1000);
    }
  }

  async states(name: string): Promise<string[]> {
    const r = await this.call('GET', `/connectors/${name}/status`);
    if (r.status !== 200) return [];
    return [r.json.connector.state, ...r.json.tasks.map((t: { state: string }) => t.state)];
  }

  async waitState(name: string, state: string, timeoutMs = 90_000): Promise<void> {
    const ok = await waitFor(async () => {
      const s = await this.states(name);
      if (s.includes('FAILED')) {
        const r = await this.call('GET', `/connectors/${name}/status`);
        throw new Error(`connector ${name} FAILED: ${JSON.stringify(r.json).slice(0, 1500)}`);
      }
      return s.length > 1 && s.every((x) => x === state);
    }, timeoutMs, 300);
    if (!ok) throw new Error(`connector ${name} not ${state} within ${timeoutMs / 1000}s (states: ${(await this.states(name)).join(' ') || 'none'})`);
  }
}

export function quantile(sorted: Float64Array | number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo];
  const b = sorted[hi];
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Number.isFinite(a) && pos === lo ? a : Infinity;
  return a + (b - a) * (pos - lo);
}
