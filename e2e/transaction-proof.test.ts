// The proof that the warehouse changes only by whole source transactions, under faults (issue 13).
// Two tables of one connector with transaction metadata (accounts, transfers); writers commit
// transfers (both balances and the transfer row in one source transaction) at a steady rate while
// readers, as the analyst role, one REPEATABLE READ transaction per read, check the invariant —
// the total never changes, and every balance is its opening one plus the transfers in minus out,
// the transfers read in the same warehouse snapshot — on three views of the data:
//   latest   `<accounts>_latest` with `<transfers>_latest`: what is loaded now;
//   as_of    `<accounts>_as_of(t)` with `<transfers>_as_of(t)`, random t ≤ consistent_through
//            (a quarter of them exactly at it), the watermark read in the same snapshot;
//   history  the versions of `<accounts>_history` / `<transfers>_history` valid at t, with t the
//            newest valid_from loaded (half of them) or a random instant before it.
// Meanwhile the processor is killed (SIGKILL) and restarted twice, and a second instance joins the
// same consumer group (partitions move to it) and later leaves. At the end the warehouse holds every
// transfer exactly once and nothing was rejected.
import { Client, Pool, type ClientBase } from 'pg';
import { closeAll, source, sourceAdmin, stackEnv, waitFor, warehouse } from './lib/stack';
import { createTopic, deleteTopics, dropSourceRecords, dropWarehouseSide, groupAssignment, registerConnector, removeCapture, startProcessor, type ProcessorHandle } from './lib/processes';

const ACCOUNTS = 20;
const OPENING = '1000.00';
const TOTAL = (ACCOUNTS * Number(OPENING)).toFixed(2);
const WRITERS = 3;
// Transfers per second, all writers together: the load lasts as long as the faults take.
const RATE = Number(process.env.E2E_TXN_RATE ?? 30);
// A pause between two reads of one reader: the readers must not starve the processor of CPU.
const READ_PAUSE_MS = 10;

const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
const prefix = `txp${suffix}`;
const connector = `txp-${suffix}`;
const slot = `txp_slot_${suffix}`;
const publication = `txp_pub_${suffix}`;
const group = `e2e-txp-${suffix}`;
// Names of their own: another branch may run this file against the same stack at the same time.
const accounts = `txp_accounts_${suffix}`;
const transfers = `txp_transfers_${suffix}`;
const topics = [`${prefix}.public.${accounts}`, `${prefix}.public.${transfers}`, `${prefix}.transaction`];
const PARTITIONS = 5; // 2 + 2 + 1
const processorEnv = (clientId: string) => ({
  PROCESSOR_TOPICS: topics.join(','), PROCESSOR_GROUP_ID: group, WAREHOUSE_HOME_PREFIX: prefix, PROCESSOR_CLIENT_ID: clientId,
});
const processors: Record<'a' | 'b', ProcessorHandle | null> = { a: null, b: null };
let readerPool: Pool | null = null;
// The load's switches: afterAll turns them off too, should the test have been cut short.
let writing = false;
let reading = false;

beforeAll(async () => {
  await source().query(`CREATE TABLE ${accounts} (id int PRIMARY KEY, balance numeric(14,2) NOT NULL)`);
  await source().query(`CREATE TABLE ${transfers} (id bigserial PRIMARY KEY, from_id int NOT NULL, to_id int NOT NULL, amount numeric(14,2) NOT NULL)`);
  await source().query(`INSERT INTO ${accounts} SELECT g, ${OPENING} FROM generate_series(1, ${ACCOUNTS}) g`);
  await sourceAdmin().query(`GRANT SELECT ON ${accounts}, ${transfers} TO debezium`);
  // With the heartbeat table: its transactions move the watermark while the tables are idle.
  await sourceAdmin().query(`CREATE PUBLICATION ${publication} FOR TABLE ${accounts}, ${transfers}, public.debezium_heartbeat`);
  await createTopic(topics[0], 2);
  await createTopic(topics[1], 2);
  await createTopic(topics[2], 1); // END records in commit order
  await registerConnector(connector, {
    'topic.prefix': prefix,
    'table.include.list': `public.${accounts},public.${transfers}`,
    'publication.name': publication,
    'publication.autocreate.mode': 'disabled',
    'slot.name': slot,
    'snapshot.mode': 'initial',
    'provide.transaction.metadata': 'true',
  });
  processors.a = await startProcessor(`txp-a-${suffix}`, processorEnv(`txp-a-${suffix}`));
  readerPool = new Pool({ connectionString: stackEnv().ANALYST_DATABASE_URL, max: 4, options: '-c TimeZone=UTC' });
}, 180_000);

// Runs also when beforeAll failed half-way: everything this file may have created goes.
afterAll(async () => {
  writing = false;
  reading = false;
  for (const p of [processors.a, processors.b]) await p?.stop('SIGKILL').catch(() => undefined);
  await readerPool?.end().catch(() => undefined);
  await removeCapture({ connector, slot, publication });
  await source().query(`DROP TABLE IF EXISTS ${accounts}, ${transfers}`).catch(() => undefined);
  await dropWarehouseSide(accounts, topics, group);
  await dropWarehouseSide(transfers, topics, group);
  await dropSourceRecords(prefix);
  await deleteTopics(topics);
  await closeAll();
}, 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One transfer: both accounts (locked in id order: no deadlock between writers) and its row. */
async function transfer(c: ClientBase): Promise<void> {
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

/** The invariant over two row sets given as SQL (`a`: id, balance; `t`: from_id, to_id, amount),
 *  with the first few accounts that break it. */
const check = (a: string, t: string) => `
  WITH a AS (${a}), t AS (${t}),
  flow AS (SELECT id, sum(d) AS d FROM (SELECT from_id AS id, -amount AS d FROM t UNION ALL SELECT to_id, amount FROM t) x GROUP BY id),
  bad AS (SELECT a.id, a.balance, ${OPENING} + coalesce(f.d, 0) AS expected FROM a LEFT JOIN flow f USING (id)
          WHERE a.balance <> ${OPENING} + coalesce(f.d, 0))
  SELECT (SELECT count(*) FROM a)::int AS n, (SELECT count(DISTINCT id) FROM a)::int AS ids,
         (SELECT sum(balance) FROM a)::text AS total, (SELECT count(*) FROM bad)::int AS unbalanced,
         (SELECT count(*) FROM t)::int AS transfers,
         (SELECT string_agg(format('account %s: %s, expected %s', id, balance, expected), '; ')
            FROM (SELECT * FROM bad ORDER BY id LIMIT 3) b) AS detail`;
const LATEST = check(`SELECT id, balance FROM ${accounts}_latest`, `SELECT from_id, to_id, amount FROM ${transfers}_latest`);
const AS_OF = check(`SELECT id, balance FROM ${accounts}_as_of($1)`, `SELECT from_id, to_id, amount FROM ${transfers}_as_of($1)`);
const validAt = (table: string, cols: string) => `SELECT ${cols} FROM ${table}_history WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)`;
const HISTORY = check(validAt(accounts, 'id, balance'), validAt(transfers, 'from_id, to_id, amount'));

type Kind = 'latest' | 'as_of' | 'history';
interface Tally { reads: number; bad: number; examples: string[]; maxTransfers: number }
const tally: Record<Kind, Tally> = {
  latest: { reads: 0, bad: 0, examples: [], maxTransfers: 0 },
  as_of: { reads: 0, bad: 0, examples: [], maxTransfers: 0 },
  history: { reads: 0, bad: 0, examples: [], maxTransfers: 0 },
};

/** One read: one REPEATABLE READ transaction (one snapshot), the instant chosen inside it. */
async function readOnce(c: ClientBase, kind: Kind, start: string, edge = false): Promise<void> {
  const n = tally[kind].reads;
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    let at: string | null = null;
    if (kind === 'as_of') {
      const { rows } = await c.query(
        `SELECT (CASE WHEN $3 THEN consistent_through ELSE $1::timestamptz + random() * (consistent_through - $1::timestamptz) END)::text AS at
           FROM pipeline_status WHERE source = $2 AND consistent_through >= $1`, [start, prefix, edge || n % 4 === 0]);
      at = rows[0]?.at ?? null;
      if (at === null) return;
    } else if (kind === 'history') {
      const { rows } = await c.query(
        `WITH m AS (SELECT greatest((SELECT max(valid_from) FROM ${accounts}_history), (SELECT max(valid_from) FROM ${transfers}_history)) AS newest)
         SELECT (CASE WHEN $2 THEN newest ELSE $1::timestamptz + random() * (newest - $1::timestamptz) END)::text AS at FROM m WHERE newest >= $1`,
        [start, edge || n % 2 === 0]);
      at = rows[0]?.at ?? null;
      if (at === null) return;
    }
    const r = (await c.query(kind === 'latest' ? LATEST : kind === 'as_of' ? AS_OF : HISTORY, at === null ? [] : [at])).rows[0];
    const t = tally[kind];
    t.reads++;
    t.maxTransfers = Math.max(t.maxTransfers, r.transfers);
    if (r.n !== ACCOUNTS || r.ids !== ACCOUNTS || r.total !== TOTAL || r.unbalanced !== 0) {
      t.bad++;
      const what = `${r.n} rows (${r.ids} accounts), total ${r.total}, ${r.transfers} transfers, ${r.unbalanced} unbalanced: ${r.detail ?? ''}`;
      // The same half state read again (nothing loaded in between) is not a new example.
      if (t.examples.length < 5 && !t.examples.some((e) => e.endsWith(what))) t.examples.push(`${kind}${at ? ` at ${at}` : ''}: ${what}`);
    }
  } finally {
    await c.query('COMMIT');
  }
}

async function watermark(): Promise<string | null> {
  const { rows } = await warehouse().query('SELECT consistent_through::text AS t FROM public.pipeline_status WHERE source = $1', [prefix]);
  return rows[0]?.t ?? null;
}

/** Until the watermark passes the source's present: everything committed before now is in, so the
 *  pipeline consumes again after a fault (a killed member holds its partitions until its session
 *  times out). */
async function progressed(what: string): Promise<number> {
  const started = Date.now();
  const now = (await source().query('SELECT clock_timestamp()::text AS t')).rows[0].t as string;
  await waitFor(`the watermark past ${now} after ${what}`, async () => {
    const w = await watermark();
    return w !== null && (await warehouse().query('SELECT $1::timestamptz > $2::timestamptz AS ok', [w, now])).rows[0].ok;
  }, 120_000, 250);
  return Date.now() - started;
}

/** Until the group is stable with these members (client ids), none of them one of `gone` (member
 *  ids of killed instances, listed until their session times out), each holding partitions. */
async function assignedTo(clientIds: string[], gone: string[] = []): Promise<string> {
  const members = await waitFor(`group ${group} stable with ${clientIds.join(', ')}`, async () => {
    const m = await groupAssignment(group);
    if (m.some((x) => gone.includes(x.memberId))) return null;
    const ids = m.map((x) => x.clientId).sort();
    const total = m.reduce((s, x) => s + x.partitions.length, 0);
    return JSON.stringify(ids) === JSON.stringify([...clientIds].sort()) && total === PARTITIONS && m.every((x) => x.partitions.length > 0) ? m : null;
  }, 120_000, 500);
  return members.map((m) => `${m.clientId.replace(`-${suffix}`, '')}: ${m.partitions.length}`).join(', ');
}

describe('the warehouse changes only by whole source transactions', () => {
  it('latest, as_of and history never show half a transaction, across kill -9 and a rebalance', async () => {
    const start = await waitFor('snapshot of the accounts loaded', async () => {
      const { rows } = await warehouse().query(`SELECT count(*)::int AS n, max(source_ts)::text AS t FROM ${accounts}_latest`).catch(() => ({ rows: [] as any[] }));
      return rows[0]?.n === ACCOUNTS ? (rows[0].t as string) : null;
    }, 120_000, 500);
    // The transfers' warehouse objects come with their first event.
    const w0 = await source().connect();
    await transfer(w0).finally(() => w0.release());
    await waitFor('the transfers history view', async () => (await warehouse().query(`SELECT to_regclass('${transfers}_history') IS NOT NULL AS ok`)).rows[0].ok, 60_000, 200);
    await waitFor('a first watermark', async () => (await watermark()) !== null, 60_000, 200);

    writing = true;
    reading = true;
    let written = 1;
    const writers = Array.from({ length: WRITERS }, async () => {
      // A connection of its own: the shared pool stays free for the test's other queries.
      const c = new Client({ connectionString: stackEnv().SOURCE_DATABASE_URL, application_name: 'e2e-txp-writer' });
      await c.connect();
      const every = (1000 * WRITERS) / RATE;
      try {
        while (writing) {
          const t0 = Date.now();
          await transfer(c);
          written++;
          await sleep(Math.max(0, every - (Date.now() - t0)));
        }
      } finally {
        await c.end();
      }
    });
    const readers = (['latest', 'as_of', 'history'] as Kind[]).map(async (kind) => {
      const c = await readerPool!.connect();
      try {
        while (reading) {
          await readOnce(c, kind, start);
          await sleep(READ_PAUSE_MS);
        }
      } finally {
        c.release();
      }
    });
    // A reader's error (a failed query, not a bad read) ends the test at once.
    const readersFailed = Promise.all(readers).then(() => new Promise<never>(() => undefined));

    const faults: string[] = [];
    const a = `txp-a-${suffix}`;
    const b = `txp-b-${suffix}`;
    const membersOf = async (clientId: string) => (await groupAssignment(group)).filter((m) => m.clientId === clientId).map((m) => m.memberId);
    const schedule = async () => {
      faults.push(`start (${await assignedTo([a])}), moving after ${await progressed('the start')} ms`);
      let gone = await membersOf(a);
      processors.a = await processors.a!.restart('SIGKILL');
      const restarted = await assignedTo([a], gone);
      faults.push(`kill -9 of A and restart (${restarted}): moving again after ${await progressed('kill -9 of A')} ms`);
      processors.b = await startProcessor(b, processorEnv(b));
      const shared = await assignedTo([a, b]);
      faults.push(`B joins the group (${shared}): moving after ${await progressed('B joining')} ms`);
      gone = await membersOf(a);
      processors.a = await processors.a!.restart('SIGKILL');
      const after = await assignedTo([a, b], gone);
      faults.push(`kill -9 of A with B in the group, restart (${after}): moving after ${await progressed('the second kill -9 of A')} ms`);
      await processors.b!.stop('SIGTERM');
      processors.b = null;
      const alone = await assignedTo([a]);
      faults.push(`B leaves (${alone}): moving after ${await progressed('B leaving')} ms`);
      await sleep(3000);
    };
    const started = Date.now();
    let loadMs = 0;
    let inSource = 0;
    try {
      try {
        await Promise.race([schedule(), readersFailed]);
      } finally {
        writing = false;
        await Promise.allSettled(writers);
      }
      loadMs = Date.now() - started;
      inSource = (await source().query(`SELECT count(*)::int AS n FROM ${transfers}`)).rows[0].n as number;
      expect(inSource).toBe(written);
      // Until every transfer is within the watermark, reads go on (the tail of the load).
      await Promise.race([
        waitFor('every transfer within the watermark', async () => {
          const w = await watermark();
          const r = (await warehouse().query(`SELECT count(*)::int AS n FROM ${transfers}_as_of($1)`, [w])).rows[0];
          return r.n === inSource;
        }, 180_000, 250),
        readersFailed,
      ]);
    } finally {
      writing = false;
      reading = false;
      await Promise.allSettled([...writers, ...readers]);
    }
    await Promise.all(readers);
    // At rest, once more each, at the newest instant each can show.
    const c = await readerPool!.connect();
    try {
      for (const kind of ['latest', 'as_of', 'history'] as Kind[]) await readOnce(c, kind, start, true);
    } finally {
      c.release();
    }

    const counts = (Object.keys(tally) as Kind[]).map((k) => `${k} ${tally[k].reads} (${tally[k].bad} bad)`).join(', ');
    console.log(`transaction proof: ${inSource} transfers in ${loadMs} ms under faults:\n  ${faults.join('\n  ')}\nchecked reads: ${counts}`);
    for (const k of Object.keys(tally) as Kind[]) {
      expect(tally[k].reads).toBeGreaterThan(100);
      expect(tally[k].maxTransfers).toBe(inSource); // the last reads saw the whole load
    }
    // Every transfer exactly once, nothing rejected: no loss and no duplicate across the faults.
    const facts = (await warehouse().query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM ${transfers}_fact`)).rows[0];
    expect(facts).toEqual({ n: inSource, ids: inSource });
    const rejected = (await warehouse().query('SELECT count(*)::int AS n FROM cdc.rejected_events WHERE topic = ANY ($1)', [topics])).rows[0].n;
    expect(rejected).toBe(0);

    const bad = (Object.keys(tally) as Kind[]).reduce((n, k) => n + tally[k].bad, 0);
    if (bad) {
      const first = (Object.keys(tally) as Kind[]).flatMap((k) => tally[k].examples);
      throw new Error(`${bad} reads showed part of a transaction (checked reads: ${counts}); the first of each kind:\n  ${first.join('\n  ')}`);
    }
  }, 600_000);
});
