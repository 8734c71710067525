// BI on the warehouse (`make bi`): Apache Superset reads the warehouse through the read-only
// `analyst` role, and its Orders dashboard shows what the source holds, to the cent.
//   - provisioning is idempotent (one database, one dashboard, one chart of each kind)
//   - the "complete up to" tile shows public.pipeline_status as the analyst reads it
//   - the dashboard query through Superset (SQL Lab and the chart data API) equals the source
//   - the analyst connection cannot write (Superset refuses DML; with DML allowed, PostgreSQL does)
//   - a real browser (Debian's chromium, headless) shows the dashboard, every chart rendered,
//     no error panel, and a new order within the refresh interval; the screenshot is kept
// Superset's JSON is read without floats: numbers are kept as their digit strings.
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import type { Browser, Page } from 'playwright-core';
import { REPO, analyst, closeAll, source, stackEnv, warehouse, waitFor } from './lib/stack';

const DATABASE_NAME = 'Warehouse (analyst, read-only)';
const DML_TEST_DATABASE = 'Warehouse (analyst, DML allowed: e2e/bi.test.ts)';
const COMPLETE_UP_TO = 'Complete up to (whole source transactions)';
const CHART_NAMES = [
  'Orders',
  'Revenue',
  'Seconds since the newest change',
  'Source commit → warehouse commit, p95 last hour (s)',
  'Orders and revenue by status',
  'Revenue per day (last 30 days)',
  'Changes per minute by operation (last hour)',
  'Source commit → warehouse commit per minute (s)',
  COMPLETE_UP_TO,
];
const REFRESH_SECONDS = 5;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// ---------------------------------------------------------------- lossless JSON

/** A JSON number as written (no float conversion). */
class Num {
  constructor(readonly raw: string) {}
}
type Json = null | boolean | string | Num | Json[] | { [k: string]: Json };

const STRING = /"(?:[^"\\]|\\.)*"/y;
const LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|NaN|-?Infinity/y;

/** JSON.parse that keeps every number as its exact text. */
function parseLossless(text: string): Json {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`bad JSON at ${i}: ${what}: ${text.slice(Math.max(0, i - 20), i + 20)}`);
  };
  const value = (): Json => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: { [k: string]: Json } = {};
      ws();
      if (text[i] === '}') return i++, o;
      for (;;) {
        ws();
        const k = value();
        if (typeof k !== 'string') fail('object key');
        ws();
        if (text[i++] !== ':') fail('expected :');
        o[k as string] = value();
        ws();
        const d = text[i++];
        if (d === '}') return o;
        if (d !== ',') fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const a: Json[] = [];
      ws();
      if (text[i] === ']') return i++, a;
      for (;;) {
        a.push(value());
        ws();
        const d = text[i++];
        if (d === ']') return a;
        if (d !== ',') fail('expected , or ]');
      }
    }
    if (c === '"') {
      STRING.lastIndex = i;
      const m = STRING.exec(text) ?? fail('string');
      i += (m as RegExpExecArray)[0].length;
      return JSON.parse((m as RegExpExecArray)[0]);
    }
    LITERAL.lastIndex = i;
    const lit = LITERAL.exec(text);
    if (!lit) return fail('value');
    i += lit[0].length;
    if (lit[0] === 'true') return true;
    if (lit[0] === 'false') return false;
    if (lit[0] === 'null') return null;
    return new Num(lit[0]);
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing text');
  return v;
}

/** A decimal's digits without trailing fraction zeros: "357.00" -> "357", "0.10" -> "0.1". Rejects exponents and floats' noise. */
function decimal(v: Json | undefined): string {
  const raw = v instanceof Num ? v.raw : typeof v === 'string' ? v : null;
  if (raw === null || !/^-?\d+(\.\d+)?$/.test(raw)) throw new Error(`not an exact decimal: ${JSON.stringify(v)}`);
  return raw.includes('.') ? raw.replace(/0+$/, '').replace(/\.$/, '') : raw;
}

type Row = { [k: string]: Json };
const obj = (v: Json): { [k: string]: Json } => v as { [k: string]: Json };

// ---------------------------------------------------------------- Superset REST client

interface Reply {
  status: number;
  text: string;
}

class Superset {
  private cookies = new Map<string, string>();
  private headers: Record<string, string> = {};

  constructor(readonly url: string) {}

  async login(user: string, password: string): Promise<void> {
    const r = await this.send('POST', '/api/v1/security/login', { username: user, password, provider: 'db', refresh: false });
    if (r.status !== 200) throw new Error(`Superset login as ${user}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    this.headers.Authorization = `Bearer ${JSON.parse(r.text).access_token}`;
    this.headers['X-CSRFToken'] = (await this.json('GET', '/api/v1/security/csrf_token/')).result;
  }

  async send(method: string, p: string, body?: unknown): Promise<Reply> {
    const res = await fetch(this.url + p, {
      method,
      redirect: 'manual',
      headers: {
        ...this.headers,
        Referer: `${this.url}/`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(this.cookies.size ? { Cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const eq = kv.indexOf('=');
      this.cookies.set(kv.slice(0, eq).trim(), kv.slice(eq + 1).trim());
    }
    return { status: res.status, text: await res.text() };
  }

  /** For metadata (ids, names): plain JSON.parse is fine there. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async json(method: string, p: string, body?: unknown): Promise<any> {
    const r = await this.send(method, p, body);
    if (r.status >= 400) throw new Error(`${method} ${p}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    return r.text ? JSON.parse(r.text) : null;
  }

  /** Every object of a resource (all pages), with the given columns. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async list(resource: string, columns: string[]): Promise<any[]> {
    const out = [];
    for (let page = 0; ; page++) {
      const q = `(columns:!(${columns.join(',')}),page:${page},page_size:100)`;
      const r = await this.json('GET', `/api/v1/${resource}/?q=${encodeURIComponent(q)}`);
      out.push(...r.result);
      if (out.length >= r.count || r.result.length === 0) return out;
    }
  }

  /** SQL Lab, synchronously; the raw reply (numbers are read losslessly by the caller). */
  sqllab(databaseId: number, sql: string): Promise<Reply> {
    return this.send('POST', '/api/v1/sqllab/execute/', {
      database_id: databaseId,
      sql,
      schema: 'public',
      runAsync: false,
      client_id: randomBytes(8).toString('hex').slice(0, 10),
      queryLimit: 10000,
      tab: 'e2e/bi.test.ts',
      expand_data: true,
      select_as_cta: false,
      ctas_method: 'TABLE',
    });
  }
}

// ---------------------------------------------------------------- the stack and Superset

function biEnv(): Record<string, string> {
  const out = execFileSync('bash', [path.join(REPO, 'bi/env.sh')], { cwd: REPO, encoding: 'utf8' });
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
  return env;
}

/** `make bi` (bi/up.sh): its output; throws with it on failure. */
function makeBi(timeoutMs: number): string {
  try {
    return execFileSync('bash', [path.join(REPO, 'bi/up.sh')], { cwd: REPO, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`bash bi/up.sh failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) })).ok;
  } catch {
    return false;
  }
}

interface Provisioned {
  databases: number[];
  datasets: Record<string, number[]>;
  charts: Record<string, number[]>;
  dashboards: number[];
  dashboardCharts: number[];
}

async function provisioned(api: Superset): Promise<Provisioned> {
  const dbs = (await api.list('database', ['id', 'database_name'])).filter((d) => d.database_name === DATABASE_NAME);
  const datasets: Record<string, number[]> = { orders_latest: [], orders_fact: [], pipeline_status: [] };
  for (const d of await api.list('dataset', ['id', 'table_name', 'schema', 'database.id'])) {
    if (d.schema === 'public' && d.table_name in datasets && dbs.some((db) => db.id === d.database?.id)) datasets[d.table_name].push(d.id);
  }
  const charts: Record<string, number[]> = Object.fromEntries(CHART_NAMES.map((n) => [n, []]));
  for (const c of await api.list('chart', ['id', 'slice_name'])) if (c.slice_name in charts) charts[c.slice_name].push(c.id);
  const dashboards = (await api.list('dashboard', ['id', 'slug'])).filter((d) => d.slug === 'orders').map((d) => d.id);
  const dashboardCharts = dashboards.length
    ? (await api.json('GET', `/api/v1/dashboard/${dashboards[0]}/charts`)).result.map((c: { id: number }) => c.id).sort((a: number, b: number) => a - b)
    : [];
  return { databases: dbs.map((d) => d.id), datasets, charts, dashboards, dashboardCharts };
}

// ---------------------------------------------------------------- source changes

const customer = () => 200_000_000 + Math.floor(Math.random() * 700_000_000);

async function insertOrders(rows: { product: string; amount: string; status: string }[]): Promise<string[]> {
  const r = await source().query(
    `INSERT INTO orders (customer_id, product_name, amount, status)
     SELECT c, p, a::numeric(12,2), s FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS t(c, p, a, s)
     RETURNING order_id`,
    [rows.map(() => customer()), rows.map((r) => r.product), rows.map((r) => r.amount), rows.map((r) => r.status)],
  );
  return r.rows.map((x) => x.order_id);
}

const latestRow = async (id: string) =>
  (await warehouse().query('SELECT status, amount::text AS amount FROM orders_latest WHERE order_id = $1', [id])).rows[0] ?? null;

/** Order ids whose changes the processor rejected on purpose (a validation rule): left out on both sides. */
async function rejectedIds(): Promise<string[]> {
  const r = await warehouse().query(
    "SELECT coalesce(array_agg(DISTINCT (payload->'row'->>'order_id')::bigint), '{}') AS ids FROM cdc.rejected_events WHERE source_table = 'orders' AND payload ? 'row'",
  );
  return r.rows[0].ids.map(String);
}

const dashboardQuery = (table: string, rejected: string[]) =>
  `SELECT status, COUNT(*) AS order_count, SUM(amount) AS total_revenue FROM ${table}` +
  (rejected.length ? ` WHERE order_id NOT IN (${rejected.join(',')})` : '') +
  ' GROUP BY status ORDER BY status';

/** The same query on the source with exact text: status -> "count|sum". */
async function onSource(rejected: string[]): Promise<Record<string, string>> {
  const r = await source().query(
    `SELECT status, count(*)::text AS n, sum(amount)::text AS s FROM orders
     WHERE order_id <> ALL ($1::bigint[]) GROUP BY status`,
    [rejected],
  );
  return sorted(Object.fromEntries(r.rows.map((x) => [x.status, `${decimal(x.n)}|${decimal(x.s)}`])));
}

/** The same entries in key order, so two results compare equal whatever their row order. */
const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

function byStatus(rows: Json, count: string, sum: string): Record<string, string> {
  return sorted(Object.fromEntries((rows as Row[]).map((r) => [r.status as string, `${decimal(r[count])}|${decimal(r[sum])}`])));
}

let bi: Record<string, string>;
let api: Superset;
let state: Provisioned;
let databaseId: number;
const chartId = (name: string) => state.charts[name][0];

beforeAll(async () => {
  stackEnv();
  bi = biEnv();
  // CI runs `make bi` before the suite; on a fresh machine this installs Superset (a few minutes).
  let p: Provisioned | null = null;
  if (await healthy(bi.BI_URL)) {
    api = new Superset(bi.BI_URL);
    await api.login(bi.BI_USER, bi.BI_PASSWORD).catch(() => undefined);
    p = await provisioned(api).catch(() => null);
  }
  if (!p || p.dashboards.length !== 1 || p.databases.length !== 1) {
    // The processor creates orders_latest/orders_fact with the first captured change: make sure there is one.
    const [first] = await insertOrders([{ product: 'BI test: first order', amount: '10.00', status: 'pending' }]);
    await waitFor('the warehouse tables', () => latestRow(first), 60_000);
    console.log(makeBi(15 * 60_000));
    bi = biEnv();
    api = new Superset(bi.BI_URL);
    await api.login(bi.BI_USER, bi.BI_PASSWORD);
    p = await provisioned(api);
  }
  state = p;
  databaseId = state.databases[0];
}, 16 * 60_000);

afterAll(closeAll);

/**
 * Polls until `read()` equals the reference (`truth`, by default the dashboard query on the source)
 * read just before and just after it. Another writer (a `make load` on a shared machine) can keep the
 * whole table moving: if the reference never held still for QUIET_MS, the test ends with
 * a failure naming the cause (a check that cannot be made does not pass); if it did and still differs, it fails.
 */
const QUIET_MS = 15_000;
async function matchWhenQuiet<A, T>(
  what: string,
  arg: () => Promise<A>,
  read: (a: A) => Promise<T>,
  truth: () => Promise<T> = async () => (await onSource(await rejectedIds())) as unknown as T,
  timeoutMs = 90_000,
): Promise<'matched'> {
  const deadline = Date.now() + timeoutMs;
  let quietSince: number | null = null;
  let previous = '';
  let last = { got: '', want: '' };
  for (;;) {
    const before = JSON.stringify(await truth());
    const got = JSON.stringify(await read(await arg()));
    const after = JSON.stringify(await truth());
    if (before === after && got === after) return 'matched';
    if (before === after && after === previous) quietSince ??= Date.now();
    else quietSince = before === after ? Date.now() : null;
    previous = after;
    last = { got, want: after };
    if (Date.now() > deadline) {
      if (quietSince !== null && Date.now() - quietSince >= QUIET_MS) {
        throw new Error(`${what} differs from the reference although it held still for ${Date.now() - quietSince} ms:\n  got  ${last.got}\n  want ${last.want}`);
      }
      // A check that cannot be made is a failure, not a pass: say why, so it can be re-run quietly.
      throw new Error(`${what}: the source kept changing for ${timeoutMs} ms (another writer, e.g. make load?); the whole-table comparison could not be made`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

// ---------------------------------------------------------------- the tests

describe('BI: Apache Superset on the warehouse (make bi)', () => {
  it('make bi provisions one database, three datasets, one dashboard and one chart of each kind; a re-run changes no id', async () => {
    const check = (p: Provisioned) => {
      expect(p.databases).toHaveLength(1);
      expect(p.datasets.orders_latest).toHaveLength(1);
      expect(p.datasets.orders_fact).toHaveLength(1);
      expect(p.datasets.pipeline_status).toHaveLength(1);
      expect(p.dashboards).toHaveLength(1);
      for (const name of CHART_NAMES) expect([name, p.charts[name].length]).toEqual([name, 1]);
      expect(p.dashboardCharts).toEqual(CHART_NAMES.map((n) => p.charts[n][0]).sort((a, b) => a - b));
    };
    check(state);
    const started = Date.now();
    const out = makeBi(5 * 60_000);
    const rerunMs = Date.now() - started;
    console.log(`make bi re-run: ${rerunMs} ms\n${out}`);
    expect(out).toContain(`${bi.BI_URL}/superset/dashboard/orders/`);
    expect(out).not.toContain(bi.BI_PASSWORD);
    const again = await provisioned(api);
    check(again);
    expect(again).toEqual(state);

    // The database is read-only in Superset too, and reaches the warehouse as `analyst`.
    const db = (await api.json('GET', `/api/v1/database/${databaseId}/connection`)).result;
    expect(db.allow_dml).toBe(false);
    expect(db.expose_in_sqllab).toBe(true);
    expect(db.parameters.username).toBe('analyst');
    // (Superset blocks current_user() and current_setting() in SQL Lab; `user` and SHOW pass.)
    const who = await api.sqllab(databaseId, 'SELECT user AS u');
    expect(obj(parseLossless(who.text)).data).toEqual([{ u: 'analyst' }]);
    const ro = await api.sqllab(databaseId, 'SHOW default_transaction_read_only');
    expect(obj(parseLossless(ro.text)).data).toEqual([{ default_transaction_read_only: 'on' }]);
    // The dashboard refreshes itself.
    const dash = (await api.json('GET', `/api/v1/dashboard/${state.dashboards[0]}`)).result;
    expect(JSON.parse(dash.json_metadata).refresh_frequency).toBe(REFRESH_SECONDS);
  });

  it('the dashboard query through Superset (SQL Lab and the chart data API) equals the source to the cent', async () => {
    // Live changes: inserts with edge amounts, updates of status and amount, a delete.
    const ids = await insertOrders([
      { product: 'BI test: cent', amount: '0.01', status: 'pending' },
      { product: 'BI test: 999.99', amount: '999.99', status: 'pending' },
      { product: 'BI test: the largest numeric(12,2)', amount: '9999999999.99', status: 'paid' },
      { product: 'BI test: to ship', amount: '19.90', status: 'paid' },
      { product: 'BI test: to cancel', amount: '5.55', status: 'pending' },
      { product: 'BI test: to delete', amount: '7.77', status: 'delivered' },
    ]);
    await source().query("UPDATE orders SET status = 'shipped', updated_at = now() WHERE order_id = $1", [ids[3]]);
    await source().query("UPDATE orders SET status = 'cancelled', amount = 5.56, updated_at = now() WHERE order_id = $1", [ids[4]]);
    await source().query('DELETE FROM orders WHERE order_id = $1', [ids[5]]);
    const [marker] = await insertOrders([{ product: 'BI test: marker', amount: '1.00', status: 'pending' }]);
    await waitFor('the changes in the warehouse', async () => (await latestRow(marker)) && (await latestRow(ids[5])) === null, 60_000);

    // The saved "Orders and revenue by status" chart's own query, through the chart data API.
    const chart = (await api.json('GET', `/api/v1/chart/${chartId('Orders and revenue by status')}`)).result;
    const chartQuery = async (filter: { col: string; op: string; val: number[] } | null) => {
      const qc = JSON.parse(chart.query_context);
      qc.force = true;
      if (filter) qc.queries[0].filters = [...(qc.queries[0].filters ?? []), filter];
      const r = await api.send('POST', '/api/v1/chart/data', qc);
      if (r.status !== 200) throw new Error(`chart data: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      const result = obj((obj(parseLossless(r.text)).result as Json[])[0]);
      if (result.status !== 'success') throw new Error(`chart data: ${r.text.slice(0, 300)}`);
      return byStatus(result.data, 'order_count', 'total_revenue');
    };
    const sqlLab = async (sql: string) => {
      const r = await api.sqllab(databaseId, sql);
      if (r.status !== 200) throw new Error(`SQL Lab: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      return byStatus(obj(parseLossless(r.text)).data, 'order_count', 'total_revenue');
    };

    // 1. This test's orders only: exact whatever else writes to the source meanwhile.
    const mine = [...ids, marker];
    const own = await source().query(
      'SELECT status, count(*)::text AS n, sum(amount)::text AS s FROM orders WHERE order_id = ANY ($1::bigint[]) GROUP BY status',
      [mine],
    );
    const ownExpected = sorted(Object.fromEntries(own.rows.map((x) => [x.status, `${decimal(x.n)}|${decimal(x.s)}`])));
    expect(ownExpected).toEqual({ cancelled: '1|5.56', paid: '1|9999999999.99', pending: '3|1001', shipped: '1|19.9' });
    expect(await sqlLab(`SELECT status, COUNT(*) AS order_count, SUM(amount) AS total_revenue FROM orders_latest WHERE order_id IN (${mine.join(',')}) GROUP BY status`)).toEqual(ownExpected);
    expect(await chartQuery({ col: 'order_id', op: 'IN', val: mine.map(Number) })).toEqual(ownExpected);

    // 2. The whole table (less the orders the processor rejected on purpose), once the pipeline has caught up.
    const viaSqlLab = await matchWhenQuiet('SQL Lab (whole table)', async () => dashboardQuery('orders_latest', await rejectedIds()), (sql) => sqlLab(sql as string));
    const viaChartData = await matchWhenQuiet('the chart data API (whole table)', rejectedIds, (rejected) =>
      chartQuery((rejected as string[]).length ? { col: 'order_id', op: 'NOT IN', val: (rejected as string[]).map(Number) } : null),
    );
    console.log(`whole table: SQL Lab ${viaSqlLab}, chart data API ${viaChartData}`);

    // 3. The saved charts exactly as the dashboard shows them (whole table, no filter) equal the warehouse.
    const inWarehouse = async () => {
      const w = await analyst().query('SELECT status, count(*)::text AS n, sum(amount)::text AS s FROM orders_latest GROUP BY status');
      const total = await analyst().query('SELECT count(*)::text AS n, sum(amount)::text AS s FROM orders_latest');
      return { byStatus: sorted(Object.fromEntries(w.rows.map((x) => [x.status, `${decimal(x.n)}|${decimal(x.s)}`]))), orders: decimal(total.rows[0].n), revenue: decimal(total.rows[0].s) };
    };
    const savedChart = async (name: string) => {
      const res = await api.send('GET', `/api/v1/chart/${chartId(name)}/data/?format=json&force=true`);
      if (res.status !== 200) throw new Error(`${name}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
      return obj((obj(parseLossless(res.text)).result as Json[])[0]).data as Row[];
    };
    const viaSavedCharts = await matchWhenQuiet('the saved charts', async () => null, async () => ({
      byStatus: byStatus(await savedChart('Orders and revenue by status'), 'order_count', 'total_revenue'),
      orders: decimal((await savedChart('Orders'))[0].orders),
      revenue: decimal((await savedChart('Revenue'))[0].revenue),
    }), inWarehouse);
    console.log(`saved charts vs warehouse: ${viaSavedCharts}`);

    // Superset's JSON carries more digits than a double holds: a float parser would lose them.
    const big = await api.sqllab(databaseId, 'SELECT 12345678901234567.89::numeric AS x');
    expect(decimal(obj((obj(parseLossless(big.text)).data as Json[])[0]).x)).toBe('12345678901234567.89');
  });

  it('the "complete up to" tile shows public.pipeline_status: consistent_through per source and lag_seconds, as the analyst reads them', async () => {
    expect([COMPLETE_UP_TO, state.charts[COMPLETE_UP_TO].length]).toEqual([COMPLETE_UP_TO, 1]);
    const chart = (await api.json('GET', `/api/v1/chart/${chartId(COMPLETE_UP_TO)}`)).result;
    expect(chart.viz_type).toBe('table');
    expect(JSON.parse(chart.params).all_columns).toEqual(['source', 'consistent_through', 'lag_seconds', 'transactions_pending']);
    // Instants in microseconds since the epoch, exact (bigint text): the view's, and the reader's now().
    const view = async () => {
      const { rows } = await analyst().query(
        `SELECT source, (extract(epoch FROM consistent_through) * 1000000)::bigint::text AS through,
                (extract(epoch FROM now()) * 1000000)::bigint::text AS now, transactions_pending::text AS pending
           FROM public.pipeline_status ORDER BY source`);
      return new Map(rows.map((r) => [r.source as string, { through: BigInt(r.through), now: BigInt(r.now), pending: r.pending as string }]));
    };
    // Superset sends an instant as epoch milliseconds, a float with the microseconds as its fraction.
    const micros = (v: Json) => {
      const m = /^(\d+)(?:\.(\d+))?$/.exec(v instanceof Num ? v.raw : String(v));
      if (!m) throw new Error(`not epoch milliseconds: ${JSON.stringify(v)}`);
      const frac = (m[2] ?? '').padEnd(4, '0');
      return BigInt(m[1]) * 1000n + BigInt(frac.slice(0, 3)) + (Number(frac[3]) >= 5 ? 1n : 0n);
    };
    const { before, after, shown } = await waitFor('the sources to hold still around one chart read', async () => {
      const b = await view();
      const res = await api.send('GET', `/api/v1/chart/${chartId(COMPLETE_UP_TO)}/data/?format=json&force=true`);
      if (res.status !== 200) throw new Error(`${COMPLETE_UP_TO}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
      const rows = obj((obj(parseLossless(res.text)).result as Json[])[0]).data as Row[];
      const a = await view();
      // Other tests add and remove sources of their own: compare a moment when none came or went.
      const same = [...b.keys()].join() === [...a.keys()].join() && rows.map((r) => r.source).join() === [...a.keys()].join();
      return same ? { before: b, after: a, shown: rows } : null;
    }, 60_000, 500);
    expect(shown.length).toBeGreaterThan(0);
    // The watermark and the clock move while the chart is read: what it shows lies between the two reads.
    // (1 µs of slack: the float's last digit.)
    for (const r of shown) {
      const s = r.source as string;
      const b = before.get(s)!;
      const a = after.get(s)!;
      const through = micros(r.consistent_through);
      const lo = b.through < a.through ? b.through : a.through;
      const hi = b.through < a.through ? a.through : b.through;
      expect([s, through >= lo - 1n && through <= hi + 1n]).toEqual([s, true]);
      const lag = Number(decimal(r.lag_seconds));
      const lagLo = Number(b.now - hi) / 1e6 - 1e-6;
      const lagHi = Number(a.now - lo) / 1e6 + 1e-6;
      expect([s, lag, lag >= lagLo && lag <= lagHi]).toEqual([s, lag, true]);
    }
    console.log(`complete up to: ${shown.map((r) => `${r.source} ${new Date(Number(micros(r.consistent_through) / 1000n)).toISOString()} (lag ${decimal(r.lag_seconds)} s)`).join(', ')}`);
  });

  it('the analyst connection cannot write: Superset refuses DML, and with DML allowed PostgreSQL does', async () => {
    const [id] = await insertOrders([{ product: 'BI test: must not change', amount: '42.00', status: 'pending' }]);
    await waitFor('the order in the warehouse', () => latestRow(id));
    const attempts = [
      `UPDATE orders_latest SET amount = 0 WHERE order_id = ${id}`,
      `DELETE FROM orders_latest WHERE order_id = ${id}`,
      `INSERT INTO orders_latest (order_id, amount, status) VALUES (-1, 1, 'paid')`,
      `WITH d AS (DELETE FROM orders_latest WHERE order_id = ${id} RETURNING *) SELECT * FROM d`,
      `SELECT 1; UPDATE orders_latest SET amount = 0 WHERE order_id = ${id}`,
      'CREATE TABLE public.bi_test_should_not_exist (x int)',
      'DROP TABLE orders_latest',
    ];
    for (const sql of attempts) {
      const r = await api.sqllab(databaseId, sql);
      expect([sql, r.status >= 400, r.text]).toEqual([sql, true, expect.stringContaining('DML_NOT_ALLOWED_ERROR')]);
    }

    // The same role with DML allowed in Superset: PostgreSQL refuses (read-only default, SELECT grants only).
    const stale = (await api.list('database', ['id', 'database_name'])).filter((d) => d.database_name === DML_TEST_DATABASE);
    for (const d of stale) await api.json('DELETE', `/api/v1/database/${d.id}`);
    const uri = stackEnv().ANALYST_DATABASE_URL.replace(/^postgres(ql)?:\/\//, 'postgresql+psycopg2://');
    const tmp = await api.json('POST', '/api/v1/database/', { database_name: DML_TEST_DATABASE, sqlalchemy_uri: uri, expose_in_sqllab: true, allow_dml: true });
    try {
      const readOnly = await api.sqllab(tmp.id, `UPDATE orders_latest SET amount = 0 WHERE order_id = ${id}`);
      expect(readOnly.status).toBeGreaterThanOrEqual(400);
      expect(readOnly.text).toMatch(/read-only transaction/);
      // Even with read-only turned off for the session, the role has no write grant.
      const noGrant = await api.sqllab(tmp.id, `SET default_transaction_read_only = off; COMMIT; UPDATE orders_latest SET amount = 0 WHERE order_id = ${id}`);
      expect(noGrant.status).toBeGreaterThanOrEqual(400);
      expect(noGrant.text).toMatch(/permission denied/);
      const cdc = await api.sqllab(tmp.id, 'SELECT * FROM cdc.rejected_events');
      expect(cdc.text).toMatch(/permission denied/);
    } finally {
      await api.json('DELETE', `/api/v1/database/${tmp.id}`);
    }
    expect(await latestRow(id)).toEqual({ status: 'pending', amount: '42.00' });
    const exists = await warehouse().query("SELECT to_regclass('public.bi_test_should_not_exist') IS NOT NULL AS e");
    expect(exists.rows[0].e).toBe(false);
  });

  describe('in a real browser (headless chromium)', () => {
    let browser: Browser;
    let page: Page;

    beforeAll(async () => {
      const { chromium } = await import('playwright-core');
      if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: make bi installs Debian's chromium (or set CHROMIUM_PATH)`);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });
      // Log in through the form, as a person does.
      await page.goto(`${bi.BI_URL}/login/`);
      await page.fill('[data-test="username-input"]', bi.BI_USER);
      await page.fill('[data-test="password-input"]', bi.BI_PASSWORD);
      await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 60_000 }), page.click('[data-test="login-button"]')]);
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
    });

    /** Per chart on the page: its name, and whether it shows data, an error, or is still loading. */
    const chartStates = () =>
      page.$$eval('[data-test="chart-grid-component"]', (els) =>
        els.map((el) => ({
          name: el.getAttribute('data-test-chart-name') ?? '',
          error: !!el.querySelector('.ant-alert-error, [role="alert"], [data-test="error-tooltip"]'),
          empty: !!el.querySelector('[data-test="empty-state"]'),
          loading: !!el.querySelector('[data-test="loading-indicator"], .loading'),
          rendered: !!el.querySelector('[data-test="slice-container"] canvas, [data-test="slice-container"] svg, [data-test="slice-container"] table, [data-test="slice-container"] .header-line'),
          text: (el.querySelector('[data-test="slice-container"] .header-line')?.textContent ?? '').trim(),
        })),
      );

    it('shows the Orders dashboard: its title, every chart rendered, no error panel; the screenshot is kept', async () => {
      const started = Date.now();
      await page.goto(`${bi.BI_URL}/superset/dashboard/orders/`);
      await page.waitForSelector('[data-test="dashboard-header-container"]', { timeout: 60_000 });
      // Every 5 s refresh redraws the tiles: a tile caught between two draws is not an error, so the
      // good state must be seen twice in a row; one that stays empty or in error fails at the bound.
      let seen: Awaited<ReturnType<typeof chartStates>> = [];
      let goodBefore = false;
      const states = await waitFor('every chart rendered, no error, twice in a row', async () => {
        seen = await chartStates();
        const good = seen.length === CHART_NAMES.length && seen.every((c) => c.rendered && !c.error && !c.empty && !c.loading)
          && (await page.locator('.ant-alert-error, [data-test="error-message"]').count()) === 0;
        const stable = good && goodBefore;
        goodBefore = good;
        return stable ? seen : null;
      }, 90_000, 250).catch((err: Error) => {
        throw new Error(`${err.message}; last seen: ${JSON.stringify(seen.map(({ name, error, empty, loading, rendered }) => ({ name, error, empty, loading, rendered })))}`);
      });
      console.log(`dashboard in the browser: ${states.length} charts rendered in ${Date.now() - started} ms`);
      expect(states.map((s) => s.name).sort()).toEqual([...CHART_NAMES].sort());
      expect(states.filter((s) => s.error || s.empty || !s.rendered).map((s) => s.name)).toEqual([]);
      expect(await page.locator('[data-test="dashboard-header-container"] [data-test="editable-title-input"]').inputValue()).toBe('Orders');
      expect(await page.locator('.ant-alert-error, [data-test="error-message"]').count()).toBe(0);

      // Charts draw with a ~1 s animation: let it finish (and not be mid-refresh) before the picture.
      await page.waitForTimeout(1500);
      await waitFor('no chart loading', async () => (await chartStates()).every((c) => !c.loading), 60_000, 100);
      const shot = path.join(stackEnv().LOG_DIR, 'orders-dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`screenshot: ${shot}`);
      if (process.env.BI_UPDATE_SCREENSHOT === '1') {
        fs.mkdirSync(path.join(REPO, 'docs/img'), { recursive: true });
        fs.copyFileSync(shot, path.join(REPO, 'docs/img/orders-dashboard.png'));
      }
    });

    // The refresh interval is the promise; a busy machine (CI) can draw late, so the bound is generous
    // and the delay is reported: a dashboard that never refreshes by itself still fails.
    it(`shows a new order without a reload (the dashboard refreshes every ${REFRESH_SECONDS} s)`, async () => {
      const ordersShown = async () => (await chartStates()).find((c) => c.name === 'Orders')?.text.replace(/,/g, '') ?? '';
      // Every refresh redraws the tile: between two draws it shows no number.
      const before = await waitFor('the Orders tile to show a count', async () => {
        const shown = await ordersShown();
        return /^\d+$/.test(shown) ? shown : null;
      }, 30_000, 100);
      expect(before).toMatch(/^\d+$/);
      const started = Date.now();
      const [id] = await insertOrders([{ product: 'BI test: seen in the browser', amount: '12.34', status: 'pending' }]);
      await waitFor('the order in the warehouse', () => latestRow(id), 60_000, 50);
      const inWarehouse = Date.now() - started;
      // The dashboard shows at least the count the warehouse had once the order was in.
      const floor = BigInt((await analyst().query('SELECT count(*)::text AS n FROM orders_latest')).rows[0].n);
      await waitFor('the dashboard to show the new order', async () => {
        const shown = await ordersShown();
        return /^\d+$/.test(shown) && BigInt(shown) >= floor;
      }, 90_000, 200);
      const onScreen = Date.now() - started;
      console.log(`source insert → warehouse: ${inWarehouse} ms; → on the dashboard (no reload): ${onScreen} ms (refresh every ${REFRESH_SECONDS} s)`);
    });
  });
});
