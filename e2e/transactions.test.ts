// Transaction consistency against the real stack: two tables of one connector with transaction
// metadata (accounts, transfers), transactions that move money between two accounts and record
// the transfer, and a reader that, while they flow, asks `<table>_as_of(t)` for random instants
// t at or before public.pipeline_status.consistent_through: the total never changes and every
// balance equals its opening balance plus the transfers in and out — no read ever sees half a
// transaction. An instant past the watermark is refused. With the source idle, the watermark
// keeps moving (Debezium's heartbeat transactions).
import { Client } from 'pg';
import { analyst, closeAll, source, sourceAdmin, stackEnv, waitFor, warehouse } from './lib/stack';
import { createTopic, deleteTopics, dropSourceRecords, dropWarehouseSide, registerConnector, removeCapture, startProcessor, type ProcessorHandle } from './lib/processes';

const ACCOUNTS = 20;
const OPENING = '1000.00';
const TRANSFERS = Number(process.env.E2E_TRANSFERS ?? 5000);
const WRITERS = 3;

const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
const prefix = `txn${suffix}`;
const connector = `txn-${suffix}`;
const slot = `txn_slot_${suffix}`;
const publication = `txn_pub_${suffix}`;
const group = `e2e-txn-${suffix}`;
const accounts = 'txn_accounts';
const transfers = 'txn_transfers';
const topics = [`${prefix}.public.${accounts}`, `${prefix}.public.${transfers}`, `${prefix}.transaction`];
let processor: ProcessorHandle | null = null;

beforeAll(async () => {
  await source().query(`DROP TABLE IF EXISTS ${accounts}, ${transfers}`);
  await source().query(`CREATE TABLE ${accounts} (id int PRIMARY KEY, balance numeric(14,2) NOT NULL)`);
  await source().query(`CREATE TABLE ${transfers} (id bigserial PRIMARY KEY, from_id int NOT NULL, to_id int NOT NULL, amount numeric(14,2) NOT NULL)`);
  await source().query(`INSERT INTO ${accounts} SELECT g, ${OPENING} FROM generate_series(1, ${ACCOUNTS}) g`);
  await sourceAdmin().query(`GRANT SELECT ON ${accounts}, ${transfers} TO debezium`);
  // With the heartbeat table, like dbz_publication: Debezium's heartbeat action query then commits
  // a transaction the connector sees (END record, no captured change) while the tables are idle.
  await sourceAdmin().query(`CREATE PUBLICATION ${publication} FOR TABLE ${accounts}, ${transfers}, public.debezium_heartbeat`);
  await createTopic(topics[0], 2);
  await createTopic(topics[1], 2);
  // One partition: END records in commit order (the connector's topic.creation group does the same).
  await createTopic(topics[2], 1);
  await registerConnector(connector, {
    'topic.prefix': prefix,
    'table.include.list': `public.${accounts},public.${transfers}`,
    'publication.name': publication,
    'publication.autocreate.mode': 'disabled',
    'slot.name': slot,
    'snapshot.mode': 'initial',
    'provide.transaction.metadata': 'true',
  });
  processor = await startProcessor(`txn-${suffix}`, { PROCESSOR_TOPICS: topics.join(','), PROCESSOR_GROUP_ID: group, WAREHOUSE_HOME_PREFIX: prefix });
}, 180_000);

afterAll(async () => {
  await processor?.stop();
  await removeCapture({ connector, slot, publication });
  await source().query(`DROP TABLE IF EXISTS ${accounts}, ${transfers}`).catch(() => undefined);
  await dropWarehouseSide(accounts, topics, group);
  await dropWarehouseSide(transfers, topics, group);
  await dropSourceRecords(prefix);
  await deleteTopics(topics);
  await closeAll();
}, 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function watermark(): Promise<string | null> {
  const { rows } = await analyst().query('SELECT consistent_through::text AS t FROM public.pipeline_status WHERE source = $1', [prefix]);
  return rows[0]?.t ?? null;
}

/** One transfer: both accounts (locked in id order: no deadlock between writers) and its row. */
async function transfer(c: Client): Promise<void> {
  const a = 1 + Math.floor(Math.random() * ACCOUNTS);
  let b = 1 + Math.floor(Math.random() * (ACCOUNTS - 1));
  if (b >= a) b++;
  const amount = (1 + Math.floor(Math.random() * 5000)) / 100;
  await c.query('BEGIN');
  for (const id of [a, b].sort((x, y) => x - y)) {
    await c.query(`UPDATE ${accounts} SET balance = balance + $2 WHERE id = $1`, [id, id === a ? -amount : amount]);
  }
  await c.query(`INSERT INTO ${transfers} (from_id, to_id, amount) VALUES ($1, $2, $3)`, [a, b, amount]);
  await c.query('COMMIT');
}

// Per instant: the number of accounts, their total, and the accounts whose balance is not the
// opening one plus the transfers in minus the transfers out, all as of that one instant.
const CHECK = `
  WITH a AS (SELECT * FROM ${accounts}_as_of($1)), t AS (SELECT * FROM ${transfers}_as_of($1)),
  flow AS (SELECT id, sum(d) AS d FROM (SELECT from_id AS id, -amount AS d FROM t UNION ALL SELECT to_id, amount FROM t) x GROUP BY id)
  SELECT count(*)::int AS n, sum(a.balance)::text AS total,
         count(*) FILTER (WHERE a.balance <> ${OPENING} + coalesce(f.d, 0))::int AS unbalanced,
         (SELECT count(*) FROM t)::int AS transfers
  FROM a LEFT JOIN flow f USING (id)`;

describe('a transaction-consistent warehouse', () => {
  it('never shows half a transaction at or before consistent_through, and refuses instants past it', async () => {
    // The snapshot is in when every account is; instants from then on have all of them.
    const start = await waitFor('snapshot of the accounts loaded', async () => {
      const { rows } = await warehouse().query(`SELECT count(*)::int AS n, max(source_ts)::text AS t FROM ${accounts}_latest`).catch(() => ({ rows: [] as any[] }));
      return rows[0]?.n === ACCOUNTS ? (rows[0].t as string) : null;
    }, 120_000, 500);
    await waitFor('a first watermark', async () => (await watermark()) !== null, 60_000, 200);
    // The transfers' warehouse tables come with their first event.
    const first = new Client({ connectionString: stackEnv().SOURCE_DATABASE_URL });
    await first.connect();
    await transfer(first).finally(() => first.end());
    await waitFor('txn_transfers_as_of', async () => (await warehouse().query(`SELECT to_regprocedure('${transfers}_as_of(timestamptz)') IS NOT NULL AS ok`)).rows[0].ok, 60_000, 200);

    let done = false;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      const c = new Client({ connectionString: stackEnv().SOURCE_DATABASE_URL, application_name: `e2e-txn-${w}` });
      await c.connect();
      try {
        for (let i = w + 1; i < TRANSFERS; i += WRITERS) await transfer(c);
      } finally {
        await c.end();
      }
    });
    const writing = Promise.all(writers).finally(() => { done = true; });

    let reads = 0;
    let refused = 0;
    let sawTransfers = 0;
    const failures: string[] = [];
    const reader = analyst();
    const readOnce = async () => {
      const through = await watermark();
      if (!through || through < start) return;
      const t = (await reader.query('SELECT ($1::timestamptz + random() * ($2::timestamptz - $1::timestamptz))::text AS t', [start, through])).rows[0].t as string;
      const r = (await reader.query(CHECK, [t])).rows[0];
      reads++;
      sawTransfers = Math.max(sawTransfers, r.transfers);
      if (r.n !== ACCOUNTS || r.total !== (ACCOUNTS * 1000).toFixed(2) || r.unbalanced !== 0) failures.push(`as of ${t}: ${JSON.stringify(r)}`);
      // Past the watermark (a second beyond it, while changes flow): refused, never a half state.
      if (reads % 50 === 0) {
        const err = await reader.query(`SELECT count(*) FROM ${accounts}_as_of($1::timestamptz + interval '1 second')`, [through]).then(() => null, (e) => e);
        if (err) {
          expect(err).toMatchObject({ code: 'CDC01' });
          refused++;
        }
      }
    };
    const READERS = 2;
    await Promise.all(Array.from({ length: READERS }, async () => { while (!done) await readOnce(); }));
    await writing;
    // Until the watermark passes the last transfer: every transfer visible at consistent_through.
    const all = await waitFor('every transfer within the watermark', async () => {
      await readOnce();
      const through = await watermark();
      const r = (await reader.query(CHECK, [through])).rows[0];
      return r.transfers === TRANSFERS ? r : null;
    }, 180_000, 100);
    console.log(`transactions e2e: ${TRANSFERS} transfers, ${reads} as_of reads checked (${refused} refused past the watermark), ${failures.length} inconsistent`);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(reads).toBeGreaterThan(100);
    expect(all).toMatchObject({ n: ACCOUNTS, total: (ACCOUNTS * 1000).toFixed(2), unbalanced: 0, transfers: TRANSFERS });
    expect(sawTransfers).toBeGreaterThan(0);

    // Idle source: Debezium's heartbeat (heartbeat.interval.ms, with its action query) commits a
    // transaction without captured changes; its END record alone moves the watermark.
    const before = await watermark();
    await sleep(1000);
    const moved = await waitFor('the watermark moves with the source idle', async () => {
      const now = await watermark();
      return now !== null && now > before! ? now : null;
    }, 40_000, 500);
    expect(moved > before!).toBe(true);
    const lag = (await analyst().query('SELECT lag_seconds FROM public.pipeline_status WHERE source = $1', [prefix])).rows[0].lag_seconds;
    expect(lag).toBeLessThan(120); // a sanity bound (heartbeat every 10 s), not a speed goal
  }, 600_000);
});
