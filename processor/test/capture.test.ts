// Following Kafka Connect when Connect restarts or is away: the loaded topics must not flap (a
// flap would unload tables and, on their return, snapshot them all again).
import * as http from 'http';
import type { AddressInfo } from 'net';
import { CaptureFollower, GONE_AFTER_MS } from '../src/capture';
import type { CapturedTables, Refusals } from '../src/captured-tables';
import { createLogger } from '../src/log';

const pg = 'io.debezium.connector.postgresql.PostgresConnector';
const connector = (include: string) => ({
  info: { type: 'source', config: { 'connector.class': pg, 'topic.prefix': 'shop', 'table.include.list': include } },
  status: { connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'RUNNING' }] },
});

/** Connect's REST API answering whatever `answer` holds (a status code: that status). */
async function fakeConnect(): Promise<{ url: string; answer: { body: unknown; status: number }; close(): Promise<void> }> {
  const answer = { body: {} as unknown, status: 200 };
  const server = http.createServer((_req, res) => {
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, answer, close: () => new Promise((r) => server.close(() => r())) };
}

/** The warehouse record, in memory: which connectors have tables in capture, which are gone. */
function fakeRecord(inCapture: string[] = []) {
  const gone: string[] = [];
  const seen = new Set<string>();
  const record = {
    gone,
    async sync(src: { connector: string }) { seen.add(src.connector); },
    async connectors() { return [...seen].filter((c) => !gone.includes(c)); },
    async connectorGone(c: string) { gone.push(c); },
    async claim(): Promise<Refusals> { return new Map(); },
    async pending() { return []; },
    async retryUnanswered(): Promise<string[]> { return []; },
    async inCapture() { return inCapture; },
  };
  return record;
}

const quiet = createLogger('error');

describe('following Kafka Connect', () => {
  let connect: Awaited<ReturnType<typeof fakeConnect>>;
  beforeEach(async () => { connect = await fakeConnect(); });
  afterEach(async () => { await connect.close(); });

  function follower(record: ReturnType<typeof fakeRecord>, clock: { now: number }) {
    const applied: string[][] = [];
    const f = new CaptureFollower(
      { connectUrl: connect.url, connectors: [], pollMs: 3_600_000, brokers: ['127.0.0.1:1'], clientId: 't',
        listTopics: async () => ['shop.public.a', 'shop.public.b', 'other.public.a'], now: () => clock.now },
      record as unknown as CapturedTables,
      async (topics) => { applied.push(topics); },
      quiet,
    );
    return { f, applied, poll: () => (f as any).poll(false) as Promise<void> };
  }

  it('keeps a connector that Connect briefly does not list (a restarting Connect), and drops it once it stays away', async () => {
    const record = fakeRecord();
    const clock = { now: 0 };
    connect.answer.body = { shop: connector('public.a,public.b') };
    const { f, applied, poll } = follower(record, clock);
    await f.start();
    expect(applied).toEqual([['shop.public.a', 'shop.public.b']]);

    connect.answer.body = {}; // Connect up, its configurations not read yet
    clock.now += GONE_AFTER_MS - 1;
    await poll();
    expect(applied).toHaveLength(1);
    expect(record.gone).toEqual([]);

    connect.answer.status = 409; // rebalancing: no answer at all
    await poll();
    expect(applied).toHaveLength(1);

    connect.answer.status = 200;
    connect.answer.body = { shop: connector('public.a,public.b') };
    clock.now += GONE_AFTER_MS;
    await poll();
    expect(applied).toHaveLength(1); // back, nothing changed

    connect.answer.body = {};
    await poll();
    clock.now += GONE_AFTER_MS;
    await poll();
    expect(record.gone).toEqual(['shop']);
    expect(applied).toEqual([['shop.public.a', 'shop.public.b'], []]);
    await f.stop();
  });

  it('starts with the recorded topics when Connect does not answer, and follows it once it does', async () => {
    const record = fakeRecord(['shop.public.a', 'shop.public.gone']);
    const clock = { now: 0 };
    connect.answer.status = 503;
    const { f, applied, poll } = follower(record, clock);
    await f.start();
    expect(applied).toEqual([['shop.public.a']]); // recorded and existing in Kafka
    connect.answer.status = 200;
    connect.answer.body = { shop: connector('public.a,public.b') };
    await poll();
    expect(applied).toEqual([['shop.public.a'], ['shop.public.a', 'shop.public.b']]);
    await f.stop();
  });
});
