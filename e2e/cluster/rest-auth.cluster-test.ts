// Secured endpoints (SECURITY=on): Kafka Connect's REST API and the schema registry refuse a client
// without credentials or with a wrong password and answer the right ones; the registry's read-only
// user (the processor's) cannot register a schema; the analyst PostgreSQL role cannot write; the
// processor, configured with the credentials, follows capture through the secured Connect.
//
// Which stack: by default (make test-cluster) a secured single node of its own on ports
// TEST_REST_AUTH_PORT_BASE+5432, +9092, ... (default base 21000) with DATA_DIR .data-rest-auth, started
// and stopped here. REST_AUTH_STACK=current runs it against the stack of the caller's environment
// (`make env`: its DATA_DIR and ports), which must run with SECURITY=on; it is left running.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Client } from 'pg';
import { authHeaders, credentialsFromEnv, type BasicCredentials } from '../../processor/src/rest-auth';

const REPO = path.resolve(__dirname, '../..');
const OWN = process.env.REST_AUTH_STACK !== 'current';
const BASE = Number(process.env.TEST_REST_AUTH_PORT_BASE ?? 21000);
const DATA_DIR = process.env.TEST_REST_AUTH_DATA_DIR ?? path.join(REPO, '.data-rest-auth');

// make env of another stack, exported by with-env.sh, would make this stack's components external.
const INHERITED = /^(SOURCE_|WAREHOUSE_|ANALYST_|KAFKA_|CONNECT_|SCHEMA_REGISTRY|APICURIO_|PROCESSOR_|REGISTRY_|DEBEZIUM_|DATA_DIR|LOG_DIR|BI_|SECURITY|.*_PASSWORD$|.*_USERNAME$)/;
function scriptEnv(): NodeJS.ProcessEnv {
  if (!OWN) return process.env;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!INHERITED.test(k)) env[k] = v;
  return {
    ...env,
    DATA_DIR,
    SECURITY: 'on',
    SOURCE_PG_PORT: String(BASE + 5432),
    WAREHOUSE_PG_PORT: String(BASE + 5433),
    KAFKA_PORT: String(BASE + 9092),
    KAFKA_CONTROLLER_PORT: String(BASE + 9093),
    REGISTRY_PORT: String(BASE + 8080),
    REGISTRY_MGMT_PORT: String(BASE + 9000),
    CONNECT_PORT: String(BASE + 8083),
    PROCESSOR_PORT: String(BASE + 8090),
    BI_PORT: String(BASE + 8088),
  };
}

function runScript(args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', args, { cwd: REPO, env: scriptEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => resolve(code));
  });
}

/** `make env` of the stack under test (KEY=value lines). */
function stackEnv(): Record<string, string> {
  const out = execFileSync('bash', [path.join(REPO, 'infra/env.sh')], { cwd: REPO, env: scriptEnv(), encoding: 'utf8' });
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
  return env;
}

let env: Record<string, string>;
let connect: BasicCredentials;
let reader: BasicCredentials;

async function status(url: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  await res.arrayBuffer();
  return res.status;
}
const wrong = (c: BasicCredentials): BasicCredentials => ({ username: c.username, password: `${c.password}-wrong` });

async function waitFor<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Inserts an order at the source and waits for it in orders_latest (read as the analyst): the
 *  change goes through the converter (registry writer) and the processor's decoder (reader).
 *  Returns the amount the warehouse holds. */
async function orderThroughPipeline(product: string, amount: string, timeoutMs: number): Promise<string> {
  const src = new Client({ connectionString: env.SOURCE_DATABASE_URL });
  const wh = new Client({ connectionString: env.ANALYST_DATABASE_URL });
  await src.connect();
  await wh.connect();
  try {
    const id = (await src.query('INSERT INTO orders (customer_id, product_name, amount, status) VALUES (7, $1, $2, \'paid\') RETURNING order_id', [product, amount])).rows[0].order_id;
    const row = await waitFor(`the order '${product}' in orders_latest`, async () => (await wh.query('SELECT amount::text AS amount FROM orders_latest WHERE order_id = $1', [id])).rows[0] ?? null, timeoutMs);
    return row.amount;
  } finally {
    await src.end();
    await wh.end();
  }
}

beforeAll(async () => {
  if (OWN) {
    await runScript(['infra/down.sh']);
    fs.rmSync(DATA_DIR, { recursive: true, force: true });
    expect(await runScript(['infra/up.sh'])).toBe(0);
  }
  env = stackEnv();
  const c = credentialsFromEnv(env, 'CONNECT');
  const r = credentialsFromEnv(env, 'SCHEMA_REGISTRY');
  if (!c || !r) {
    throw new Error(`the stack of DATA_DIR=${env.DATA_DIR} does not run with SECURITY=on (make env prints no CONNECT_USERNAME / SCHEMA_REGISTRY_USERNAME): start it with SECURITY=on make up`);
  }
  connect = c;
  reader = r;
  // A fresh stack has no orders yet: one change through the whole pipeline registers the orders
  // schemas (the writer) and creates orders_latest (the processor, decoding with the reader).
  await orderThroughPipeline('rest-auth warm-up', '1.00', 120_000);
});

afterAll(async () => {
  if (OWN) await runScript(['infra/down.sh']);
});

describe('secured endpoints (SECURITY=on)', () => {
  it("Kafka Connect's REST API: 401 without credentials or with a wrong password, 200 with the right ones, on every worker", async () => {
    const workers = (env.CONNECT_URLS || env.CONNECT_URL).split(',');
    for (const w of workers) {
      for (const p of ['/', '/connectors', '/connectors/orders-source/status', '/connector-plugins']) {
        expect({ w, p, code: await status(`${w}${p}`) }).toEqual({ w, p, code: 401 });
        expect({ w, p, code: await status(`${w}${p}`, { headers: authHeaders(wrong(connect)) }) }).toEqual({ w, p, code: 401 });
        expect({ w, p, code: await status(`${w}${p}`, { headers: authHeaders(connect) }) }).toEqual({ w, p, code: 200 });
      }
      // A write without credentials is refused before it reaches the herder; with them, a follower
      // forwards it to the leader with the user's header (restart of the connector alone: harmless).
      expect(await status(`${w}/connectors/orders-source/restart`, { method: 'POST' })).toBe(401);
      expect([202, 204]).toContain(await status(`${w}/connectors/orders-source/restart`, { method: 'POST', headers: authHeaders(connect) }));
    }
    await waitFor('orders-source RUNNING after the restarts', async () => {
      const res = await fetch(`${env.CONNECT_URL}/connectors/orders-source/status`, { headers: authHeaders(connect) });
      const s = (await res.json()) as any;
      return s.connector?.state === 'RUNNING' && s.tasks?.every((t: any) => t.state === 'RUNNING');
    }, 60_000);
  });

  it('the registry: ccompat and v3 APIs refuse a client without credentials or with a wrong password', async () => {
    const v3 = env.APICURIO_REGISTRY_URL;
    for (const url of [`${env.SCHEMA_REGISTRY_URL}/subjects`, `${env.SCHEMA_REGISTRY_URL}/schemas/ids/1`, `${v3}/groups`, `${v3}/search/artifacts`]) {
      expect({ url, code: await status(url) }).toEqual({ url, code: 401 });
      expect({ url, code: await status(url, { headers: authHeaders(wrong(reader)) }) }).toEqual({ url, code: 401 });
      expect({ url, code: await status(url, { headers: authHeaders(reader) }) }).toEqual({ url, code: 200 });
    }
  });

  it("the registry's reader (the processor's user) reads schemas but cannot register one", async () => {
    const subjects = await (await fetch(`${env.SCHEMA_REGISTRY_URL}/subjects`, { headers: authHeaders(reader) })).json() as string[];
    expect(subjects).toContain('dbserver1.public.orders-value'); // the writer (Connect's converter) registered it
    const schema = JSON.stringify({ schema: JSON.stringify({ type: 'record', name: 'RestAuthProbe', fields: [{ name: 'a', type: 'string' }] }) });
    const ccompat = `${env.SCHEMA_REGISTRY_URL}/subjects/rest-auth-probe-value/versions`;
    const headers = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
    expect(await status(ccompat, { method: 'POST', headers, body: schema })).toBe(401);
    expect(await status(ccompat, { method: 'POST', headers: { ...headers, ...authHeaders(reader) }, body: schema })).toBe(403);
    const v3 = `${env.APICURIO_REGISTRY_URL}/groups/default/artifacts`;
    const artifact = JSON.stringify({ artifactId: 'rest-auth-probe', artifactType: 'AVRO', firstVersion: { content: { content: JSON.parse(schema).schema, contentType: 'application/json' } } });
    expect(await status(v3, { method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(reader) }, body: artifact })).toBe(403);
    // Nothing was registered.
    expect(await status(`${env.SCHEMA_REGISTRY_URL}/subjects/rest-auth-probe-value/versions`, { headers: authHeaders(reader) })).toBe(404);
  });

  it('the analyst PostgreSQL role still cannot write, even in a read-write transaction', async () => {
    const c = new Client({ connectionString: env.ANALYST_DATABASE_URL });
    await c.connect();
    try {
      await c.query('SELECT count(*) FROM orders_latest');
      for (const sql of [
        "INSERT INTO orders_latest (order_id) VALUES (-1)",
        "UPDATE orders_latest SET status = 'x' WHERE false",
        "INSERT INTO cdc.offsets SELECT * FROM cdc.offsets WHERE false",
        "UPDATE cdc.captured_tables SET table_name = table_name WHERE false",
      ]) {
        await c.query('BEGIN READ WRITE');
        await expect(c.query(sql)).rejects.toThrow(/permission denied/);
        await c.query('ROLLBACK');
      }
    } finally {
      await c.end();
    }
  });

  it('the processor, given the credentials, decodes and follows capture through the secured endpoints', async () => {
    const urls = (env.PROCESSOR_URLS || env.PROCESSOR_URL).split(',');
    for (const u of urls) {
      const h = await waitFor(`processor ${u} following orders`, async () => {
        const res = await fetch(`${u}/health`);
        const body = (await res.json()) as { topics?: string[] };
        return res.ok && body.topics?.includes('dbserver1.public.orders') ? body : null;
      }, 60_000);
      expect(h.topics).toContain('dbserver1.public.orders');
    }
    // A change goes through the converter (writer) and the processor's decoder (reader).
    expect(await orderThroughPipeline('rest-auth probe', '12.34', 60_000)).toBe('12.34');
  });
});
