// The registry client against a real HTTP server on a local port: only a definite "no such
// schema" from a reachable registry may reject a message; any other trouble must be retried.
import * as http from 'http';
import type { AddressInfo } from 'net';
import { Decoder } from '../src/decode';
import { RegistrySchemas } from '../src/registry';
import { RegistryUnavailableError, UnknownSchemaError } from '../src/errors';
import { avroType } from '../src/avro';
import { envelopeSchema, keySchema, order, ordersValueFields, source, wire } from './fixtures/debezium';

const VALUE_ID = 7;
const KEY_ID = 3;
const schemasById: Record<number, any> = { [VALUE_ID]: envelopeSchema('orders', ordersValueFields), [KEY_ID]: keySchema('orders') };
const BASE = '/apis/ccompat/v7';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Answers like Apicurio's Confluent-compatible API (body shapes checked against the stack's registry). */
const healthy: Handler = (req, res) => {
  const m = new RegExp(`^${BASE}/schemas/ids/(\\d+)$`).exec(req.url ?? '');
  const raw = m ? schemasById[Number(m[1])] : undefined;
  if (!m) return json(res, 404, '');
  if (!raw) return json(res, 404, JSON.stringify({ message: `Schema ${m[1]} not found.`, error_code: 40403 }));
  json(res, 200, JSON.stringify({ schema: JSON.stringify(raw) }));
};

function json(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(body);
}

interface FakeRegistry {
  url: string;
  requests: string[];
  handle(h: Handler): void;
  close(): Promise<void>;
}

async function fakeRegistry(): Promise<FakeRegistry> {
  let handler = healthy;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${BASE}`,
    requests,
    handle: (h) => (handler = h),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A port nothing listens on (taken and released). */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const message = () => {
  const envelope = { before: null, after: order(42n, '12345678.91'), source: source(500n, 1737014399999999n), transaction: null, op: 'c', ts_ms: 1n, ts_us: 1n, ts_ns: 1n };
  return {
    key: wire(KEY_ID, avroType(schemasById[KEY_ID]), { order_id: 42n }),
    value: wire(VALUE_ID, avroType(schemasById[VALUE_ID]), envelope),
  };
};

const TOPIC = 'dbserver1.public.orders';
let registry: FakeRegistry;

beforeEach(async () => {
  registry = await fakeRegistry();
});
afterEach(() => registry.close());

const decoderFor = (url: string) => new Decoder(new RegistrySchemas(url, { timeoutMs: 300 }));

describe('schema registry look-ups', () => {
  it('decodes through a reachable registry with exact values, one request per schema id', async () => {
    const decoder = decoderFor(registry.url);
    const m = message();
    for (let i = 0; i < 2; i++) {
      const d = await decoder.decode(TOPIC, m.key, m.value);
      expect(d.kind === 'event' && [d.event.row.amount, d.event.row.order_id, d.event.lsn, d.event.keyText]).toEqual(['12345678.91', 42n, 500n, 'i42;']);
    }
    expect(registry.requests.sort()).toEqual([`${BASE}/schemas/ids/${KEY_ID}`, `${BASE}/schemas/ids/${VALUE_ID}`]);
  });

  it('rejects a message whose schema id the registry says it does not have', async () => {
    const m = message();
    const unknown = Buffer.from(m.value);
    unknown.writeInt32BE(99, 1);
    const d = await decoderFor(registry.url).decode(TOPIC, m.key, unknown);
    expect(d).toMatchObject({ kind: 'reject', stage: 'decode', table: 'orders' });
    if (d.kind === 'reject') expect(d.reason).toMatch(/schema id 99 is not in the registry/);
    await expect(new RegistrySchemas(registry.url).get(99)).rejects.toBeInstanceOf(UnknownSchemaError);
    await expect(new RegistrySchemas(registry.url).get(99)).rejects.toMatchObject({ code: 'SCHEMA_NOT_FOUND' });
  });

  it('retries (throws) when the registry port is closed', async () => {
    const m = message();
    const decode = decoderFor(`http://127.0.0.1:${await closedPort()}${BASE}`).decode(TOPIC, m.key, m.value);
    await expect(decode).rejects.toBeInstanceOf(RegistryUnavailableError);
  });

  it.each<[string, Handler]>([
    ['answers 500', (_q, r) => json(r, 500, '{"message":"boom","error_code":50001}')],
    ['answers 503 without a body', (_q, r) => json(r, 503, '')],
    ['answers 429', (_q, r) => json(r, 429, '{"message":"slow down"}')],
    ['answers 400', (_q, r) => json(r, 400, '{"message":"bad request","error_code":400}')],
    ['answers 404 without the not-found code (wrong path, a proxy)', (_q, r) => json(r, 404, '<html>Not Found</html>')],
    ['answers 404 with an other error code', (_q, r) => json(r, 404, '{"message":"Subject not found.","error_code":40401}')],
    ['answers 200 with a body that is not a schema', (_q, r) => json(r, 200, '<html>login</html>')],
    ['answers 200 with a cut-off body', (_q, r) => json(r, 200, '{"schema":"{\\"type\\":\\"rec')],
    ['never answers (timeout)', () => undefined],
  ])('retries (throws REGISTRY_UNAVAILABLE) when the registry %s', async (_what, handler) => {
    registry.handle(handler);
    const m = message();
    const err = await decoderFor(registry.url).decode(TOPIC, m.key, m.value).then(
      (d) => ({ returned: d }),
      (e) => e,
    );
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(err.code).toBe('REGISTRY_UNAVAILABLE');
  });

  it('recovers once the registry answers again (failures are not cached)', async () => {
    const decoder = decoderFor(registry.url);
    const m = message();
    registry.handle((_q, r) => json(r, 500, ''));
    await expect(decoder.decode(TOPIC, m.key, m.value)).rejects.toBeInstanceOf(RegistryUnavailableError);
    registry.handle(() => undefined);
    await expect(decoder.decode(TOPIC, m.key, m.value)).rejects.toBeInstanceOf(RegistryUnavailableError);
    registry.handle(healthy);
    const d = await decoder.decode(TOPIC, m.key, m.value);
    expect(d.kind === 'event' && d.event.row.amount).toBe('12345678.91');
  });

  it('lists subjects, and reports an unreachable registry as such', async () => {
    registry.handle((_q, r) => json(r, 200, '["dbserver1.public.orders-key","dbserver1.public.orders-value"]'));
    expect(await new RegistrySchemas(registry.url).subjects()).toEqual(['dbserver1.public.orders-key', 'dbserver1.public.orders-value']);
    registry.handle(() => undefined);
    await expect(new RegistrySchemas(registry.url, { timeoutMs: 200 }).subjects()).rejects.toBeInstanceOf(RegistryUnavailableError);
  });

  it('sends its credentials to a registry that asks for them, and a refusal is not "unknown schema"', async () => {
    const m = message();
    const want = `Basic ${Buffer.from('reader:pw').toString('base64')}`;
    registry.handle((q, r) => (q.headers.authorization === want ? healthy(q, r) : json(r, 401, '{"message":"Unauthorized"}')));
    const d = await new Decoder(new RegistrySchemas(registry.url, { auth: { username: 'reader', password: 'pw' } })).decode(TOPIC, m.key, m.value);
    expect(d.kind === 'event' && d.event.row.amount).toBe('12345678.91');
    const refused = new Decoder(new RegistrySchemas(registry.url, { auth: { username: 'reader', password: 'wrong' } })).decode(TOPIC, m.key, m.value);
    await expect(refused).rejects.not.toBeInstanceOf(UnknownSchemaError);
    await expect(new RegistrySchemas(registry.url).subjects()).rejects.toThrow(/answered 401/);
  });
});

