// Time travel against the real stack: `orders_as_of(ts)` equals the source table as it was at
// quiet instants recorded while changes flowed (inserts, updates, deletes, a delete followed by
// a re-insert of the same key, several changes of one key in one transaction), and
// `orders_history` has the type-2 shape: N versions for N changes (a delete closes the last and
// adds none), contiguous, valid_from = the source commit time, exactly one current version for
// a live key and none for a deleted one. A table of its own (own connector and processor
// instance, like any-table.test.ts) shows a column added later: null before, the value after.
import { Client } from 'pg';
import { closeAll, source, stackEnv, waitFor, warehouse } from './lib/stack';
import { captureTable, type CapturedTable } from './lib/processes';

const SESSION = '-c TimeZone=UTC -c DateStyle=ISO,YMD';
const clients: Client[] = [];
async function client(url: string): Promise<Client> {
  const c = new Client({ connectionString: url, options: SESSION, application_name: 'e2e-time-travel' });
  c.on('error', () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Epoch microseconds, exact (extract(epoch) is numeric in PostgreSQL 14+). */
const US = (expr: string) => `(extract(epoch FROM ${expr}) * 1000000)::bigint::text`;

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await closeAll();
});

/**
 * Quiet instants of one source table: SHARE mode waits for every transaction writing the table
 * to end and holds new writers off, so every change committed before `clock_timestamp()` is
 * visible and none after it is. The table's rows at that instant are kept in a temporary table
 * of this session (the whole table, whoever else writes to it), as ROW(...)::text per key.
 */
class Dumps {
  readonly instants: string[] = [];
  private constructor(private readonly c: Client, private readonly table: string, private readonly key: string) {}

  static async open(table: string, key: string): Promise<Dumps> {
    const c = await client(stackEnv().SOURCE_DATABASE_URL);
    await c.query('CREATE TEMP TABLE tt_dump (instant int, k bigint, cols text[], row text)');
    return new Dumps(c, table, key);
  }

  async take(): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.c.query('BEGIN');
        await this.c.query("SET LOCAL lock_timeout = '5s'");
        await this.c.query(`LOCK TABLE ${this.table} IN SHARE MODE`);
        const at = (await this.c.query('SELECT clock_timestamp()::text AS at')).rows[0].at as string;
        const cols = (await this.c.query(
          `SELECT array_agg(attname::text ORDER BY attnum) AS cols FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
          [this.table],
        )).rows[0].cols as string[];
        const n = this.instants.length;
        await this.c.query(
          `INSERT INTO tt_dump SELECT $1, t.${this.key}, $2::text[], ROW(${cols.map((c) => `t."${c}"`).join(', ')})::text FROM ${this.table} t`,
          [n, cols],
        );
        await this.c.query('COMMIT');
        this.instants.push(at);
        return at;
      } catch (err) {
        await this.c.query('ROLLBACK').catch(() => undefined);
        if (attempt >= 5) throw err;
      }
    }
  }

  async columns(n: number): Promise<string[]> {
    return (await this.c.query('SELECT cols FROM tt_dump WHERE instant = $1 LIMIT 1', [n])).rows[0]?.cols ?? [];
  }

  /** Rows at instant n (key → text), or only the given keys. */
  async rows(n: number, keys?: string[]): Promise<Map<string, string>> {
    const res = await this.c.query(
      `SELECT k::text, row FROM tt_dump WHERE instant = $1 AND ($2::bigint[] IS NULL OR k = ANY ($2::bigint[])) ORDER BY k`,
      [n, keys ?? null],
    );
    return new Map(res.rows.map((r) => [r.k, r.row]));
  }

  async digest(n: number, excluded: string[]): Promise<{ n: number; h: string | null }> {
    return (await this.c.query(
      `SELECT count(*)::int AS n, md5(string_agg(row, E'\\n' ORDER BY k)) AS h FROM tt_dump WHERE instant = $1 AND k <> ALL ($2::bigint[])`,
      [n, excluded],
    )).rows[0];
  }
}

/** The warehouse side, as the analyst role: `<table>_as_of(at)` with the source's columns. */
async function asOf(wh: Client, table: string, key: string, at: string, cols: string[], keys?: string[]): Promise<Map<string, string>> {
  const res = await wh.query(
    `SELECT t."${key}"::text AS k, ROW(${cols.map((c) => `t."${c}"`).join(', ')})::text AS row FROM "${table}_as_of"($1::timestamptz) t
     WHERE ($2::bigint[] IS NULL OR t."${key}" = ANY ($2::bigint[])) ORDER BY 1`,
    [at, keys ?? null],
  );
  return new Map(res.rows.map((r) => [r.k, r.row]));
}

async function asOfDigest(wh: Client, table: string, key: string, at: string, cols: string[], excluded: string[]): Promise<{ n: number; h: string | null }> {
  return (await wh.query(
    `SELECT count(*)::int AS n, md5(string_agg(ROW(${cols.map((c) => `t."${c}"`).join(', ')})::text, E'\\n' ORDER BY t."${key}")) AS h
     FROM "${table}_as_of"($1::timestamptz) t WHERE t."${key}" <> ALL ($2::bigint[])`,
    [at, excluded],
  )).rows[0];
}

function diff(expected: Map<string, string>, actual: Map<string, string>) {
  const out = { missing: [] as string[], extra: [] as string[], different: [] as Array<{ expected: string; actual: string }> };
  for (const [k, v] of expected) {
    const a = actual.get(k);
    if (a === undefined) out.missing.push(v);
    else if (a !== v) out.different.push({ expected: v, actual: a });
  }
  for (const [k, v] of actual) if (!expected.has(k)) out.extra.push(v);
  return out;
}

interface Change { key: string; op: 'c' | 'u' | 'd'; tx: number }
interface Tx { before: bigint; after: bigint }

/** Runs source transactions on one connection, with the source clock just before and after
 *  each: the commit time lies between. Every change of a key is logged in order. */
class Workload {
  readonly txs: Tx[] = [];
  readonly changes: Change[] = [];
  private constructor(private readonly c: Client, readonly customer: number) {}

  static async open(): Promise<Workload> {
    return new Workload(await client(stackEnv().SOURCE_DATABASE_URL), 100_000 + Math.floor(Math.random() * 800_000_000));
  }

  async tx(body: (q: (sql: string, params?: unknown[]) => Promise<any[]>, log: (key: string, op: Change['op']) => void) => Promise<void>): Promise<void> {
    const before = BigInt((await this.c.query(`SELECT ${US('clock_timestamp()')} AS us`)).rows[0].us);
    const n = this.txs.length;
    const logged: Change[] = [];
    await this.c.query('BEGIN');
    try {
      await body(async (sql, params) => (await this.c.query(sql, params)).rows, (key, op) => logged.push({ key, op, tx: n }));
      await this.c.query('COMMIT');
    } catch (err) {
      await this.c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    const after = BigInt((await this.c.query(`SELECT ${US('clock_timestamp()')} AS us`)).rows[0].us);
    this.txs.push({ before, after });
    this.changes.push(...logged);
  }

  insert(q: (sql: string, params?: unknown[]) => Promise<any[]>, product: string, amount: string, id: string | null = null): Promise<string> {
    return q(
      `INSERT INTO orders (order_id, customer_id, product_name, amount, status)
       VALUES (coalesce($1::bigint, nextval('orders_order_id_seq')), $2, $3, $4::numeric, 'pending') RETURNING order_id::text AS id`,
      [id, this.customer, product, amount],
    ).then((r) => r[0].id);
  }

  keys(): string[] {
    return [...new Set(this.changes.map((c) => c.key))];
  }
  opsOf(key: string): Change[] {
    return this.changes.filter((c) => c.key === key);
  }
  live(key: string): boolean {
    const ops = this.opsOf(key);
    return ops.length > 0 && ops[ops.length - 1].op !== 'd';
  }
}

const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled'];

describe('time travel on orders', () => {
  let work: Workload;
  let dumps: Dumps;
  let wh: Client;

  beforeAll(async () => {
    work = await Workload.open();
    dumps = await Dumps.open('orders', 'order_id');
    wh = await client(stackEnv().ANALYST_DATABASE_URL);
  });

  it('orders_as_of(instant) equals the source table at quiet instants recorded while changes flowed', async () => {
    let done = false;
    const snapshotter = (async () => {
      await dumps.take();
      while (!done) {
        await sleep(150 + Math.random() * 200);
        await dumps.take();
      }
      await dumps.take();
    })();

    const ids: Record<string, string> = {};
    try {
      // Scripted cases first, each in its own transaction unless said otherwise.
      await work.tx(async (q, log) => {
        for (const name of ['A', 'B', 'C', 'D', 'E', 'F']) {
          ids[name] = await work.insert(q, `time travel ${name}`, '10.00');
          log(ids[name], 'c');
        }
      });
      const update = (name: string, set: string) => work.tx(async (q, log) => {
        await q(`UPDATE orders SET ${set}, updated_at = clock_timestamp() WHERE order_id = $1`, [ids[name]]);
        log(ids[name], 'u');
      });
      await update('A', "status = 'paid'");
      await update('B', 'amount = 12.34');
      await work.tx(async (q, log) => { // two keys in one transaction
        await q("UPDATE orders SET status = 'shipped' WHERE order_id = $1", [ids.A]);
        log(ids.A, 'u');
        await q("UPDATE orders SET status = 'paid' WHERE order_id = $1", [ids.C]);
        log(ids.C, 'u');
      });
      await work.tx(async (q, log) => { // delete ...
        await q('DELETE FROM orders WHERE order_id = $1', [ids.D]);
        log(ids.D, 'd');
      });
      await work.tx(async (q, log) => { // ... and insert the same key again: a new chain
        await work.insert(q, 'time travel D again', '20.00', ids.D);
        log(ids.D, 'c');
      });
      await work.tx(async (q, log) => { // several changes of one key in one transaction
        for (const set of ["status = 'paid'", 'amount = 11.11', "status = 'shipped'"]) {
          await q(`UPDATE orders SET ${set} WHERE order_id = $1`, [ids.E]);
          log(ids.E, 'u');
        }
      });
      await work.tx(async (q, log) => { // insert, update and delete in one transaction: never visible
        ids.G = await work.insert(q, 'time travel G', '1.00');
        log(ids.G, 'c');
        await q("UPDATE orders SET status = 'paid' WHERE order_id = $1", [ids.G]);
        log(ids.G, 'u');
        await q('DELETE FROM orders WHERE order_id = $1', [ids.G]);
        log(ids.G, 'd');
      });
      await work.tx(async (q, log) => { // delete and re-insert in one transaction
        await q('DELETE FROM orders WHERE order_id = $1', [ids.F]);
        log(ids.F, 'd');
        await work.insert(q, 'time travel F again', '30.00', ids.F);
        log(ids.F, 'c');
      });
      await update('D', "status = 'paid'");
      await work.tx(async (q, log) => {
        await q('DELETE FROM orders WHERE order_id = $1', [ids.B]);
        log(ids.B, 'd');
      });

      // Then a random mix, with pauses, while the instants keep being recorded.
      for (let i = 0; i < 40; i++) {
        await sleep(20 + Math.random() * 60);
        const live = work.keys().filter((k) => work.live(k));
        const dead = work.keys().filter((k) => !work.live(k));
        const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
        const r = Math.random();
        await work.tx(async (q, log) => {
          if (r < 0.1 || live.length < 3) {
            const id = await work.insert(q, `time travel random ${i}`, `${(Math.random() * 100).toFixed(2)}`);
            log(id, 'c');
          } else if (r < 0.2 && dead.length) {
            const id = pick(dead);
            await work.insert(q, `time travel back ${i}`, '5.55', id);
            log(id, 'c');
          } else if (r < 0.3) {
            const id = pick(live);
            await q('DELETE FROM orders WHERE order_id = $1', [id]);
            log(id, 'd');
          } else if (r < 0.45) {
            const id = pick(live);
            for (let j = 0; j < 2 + Math.floor(Math.random() * 3); j++) {
              await q('UPDATE orders SET amount = $2::numeric, updated_at = clock_timestamp() WHERE order_id = $1', [id, (Math.random() * 100).toFixed(2)]);
              log(id, 'u');
            }
          } else {
            const id = pick(live);
            await q('UPDATE orders SET status = $2, updated_at = clock_timestamp() WHERE order_id = $1', [id, pick(STATUSES)]);
            log(id, 'u');
          }
        });
      }
    } finally {
      done = true;
      await snapshotter;
    }
    expect(dumps.instants.length).toBeGreaterThanOrEqual(5);

    // Caught up: a marker committed after the last instant is in the warehouse.
    let marker = '';
    await work.tx(async (q) => { marker = await work.insert(q, 'time travel marker', '0.01'); });
    await waitFor('the marker in orders_latest', async () =>
      (await wh.query('SELECT 1 FROM orders_latest WHERE order_id = $1', [marker])).rowCount === 1, 90_000, 200);

    // Our keys, value for value, at every instant.
    const mine = work.keys();
    for (let n = 0; n < dumps.instants.length; n++) {
      const cols = await dumps.columns(n);
      const expected = await dumps.rows(n, mine);
      await waitFor(`orders_as_of(${dumps.instants[n]}) for our keys`, async () => {
        const d = diff(expected, await asOf(wh, 'orders', 'order_id', dumps.instants[n], cols, mine));
        return d.missing.length + d.extra.length + d.different.length === 0;
      }, 30_000, 500).catch(async () => {
        expect(diff(expected, await asOf(wh, 'orders', 'order_id', dumps.instants[n], cols, mine))).toEqual({ missing: [], extra: [], different: [] });
      });
    }

    // The whole table, whoever else changed it, row for row: except orders with a rejected
    // change (a validation rule failed), which the warehouse holds back on purpose.
    const excluded = await rejectedOrders();
    const sizes: number[] = [];
    for (let n = 0; n < dumps.instants.length; n++) {
      const cols = await dumps.columns(n);
      const at = dumps.instants[n];
      const ok = await waitFor(`orders_as_of(${at}) for the whole table`, async () => {
        const [s, w] = await Promise.all([dumps.digest(n, excluded), asOfDigest(wh, 'orders', 'order_id', at, cols, excluded)]);
        sizes[n] = s.n;
        return s.n === w.n && s.h === w.h;
      }, 60_000, 1000).then(() => true, () => false);
      if (!ok) {
        const expected = await dumps.rows(n);
        const actual = await asOf(wh, 'orders', 'order_id', at, cols);
        for (const k of excluded) { expected.delete(k); actual.delete(k); }
        const d = diff(expected, actual);
        expect({ at, missing: d.missing.slice(0, 20), extra: d.extra.slice(0, 20), different: d.different.slice(0, 20) })
          .toEqual({ at, missing: [], extra: [], different: [] });
      }
    }
    console.log(`orders_as_of = the source at ${dumps.instants.length} instants (${sizes[0]}..${sizes[sizes.length - 1]} rows each, ` +
      `${excluded.length} orders with rejected changes left out); ${work.txs.length} transactions, ${work.changes.length} changes of ${work.keys().length} orders of ours`);
  });

  it('orders_history: one version per change, contiguous, at the source commit times, one current version for a live key', async () => {
    const keys = work.keys();
    expect(keys.length).toBeGreaterThanOrEqual(7);
    const res = await wh.query(
      `SELECT order_id::text AS k, op, is_current, ${US('valid_from')} AS from_us, ${US('valid_to')} AS to_us, source_lsn::text AS lsn
       FROM orders_history WHERE order_id = ANY ($1::bigint[]) ORDER BY order_id, source_lsn`,
      [keys],
    );
    const versions = new Map<string, any[]>();
    for (const r of res.rows) versions.set(r.k, [...(versions.get(r.k) ?? []), r]);
    const commitOf = (c: Change) => work.txs[c.tx];
    const within = (us: string | null, c: Change) => us !== null && BigInt(us) >= commitOf(c).before && BigInt(us) <= commitOf(c).after;

    let zeroLength = 0;
    let chains = 0;
    for (const key of keys) {
      const ops = work.opsOf(key);
      const made = ops.filter((c) => c.op !== 'd');
      const got = versions.get(key) ?? [];
      // N changes that are not deletes: N versions, in the same order.
      expect({ key, ops: got.map((v) => v.op) }).toEqual({ key, ops: made.map((c) => c.op) });
      for (let i = 0; i < made.length; i++) {
        const v = got[i];
        // valid_from is the commit time of the version's own transaction.
        expect({ key, i, ok: within(v.from_us, made[i]) }).toEqual({ key, i, ok: true });
        const next = ops[ops.indexOf(made[i]) + 1];
        if (!next) {
          expect({ key, valid_to: v.to_us, is_current: v.is_current }).toEqual({ key, valid_to: null, is_current: true });
          continue;
        }
        expect({ key, i, is_current: v.is_current }).toEqual({ key, i, is_current: false });
        // valid_to is the commit time of the key's next change, a delete included.
        expect({ key, i, ok: within(v.to_us, next) }).toEqual({ key, i, ok: true });
        if (next.op === 'd') {
          chains++;
          if (i + 1 < made.length) expect(BigInt(got[i + 1].from_us)).toBeGreaterThanOrEqual(BigInt(v.to_us));
        } else {
          // Contiguous: valid_to of one = valid_from of the next.
          expect({ key, i, to: v.to_us }).toEqual({ key, i, to: got[i + 1].from_us });
        }
        if (next.tx === made[i].tx) {
          zeroLength++;
          expect({ key, i, zeroLength: v.from_us === v.to_us }).toEqual({ key, i, zeroLength: true });
        }
      }
      expect({ key, current: got.filter((v) => v.is_current).length }).toEqual({ key, current: work.live(key) ? 1 : 0 });
    }
    expect(zeroLength).toBeGreaterThanOrEqual(3); // E's and G's changes in one transaction
    expect(chains).toBeGreaterThanOrEqual(3); // B, D, F, G deleted
  });

  it('is readable by analysts, and orders_as_of(now() - 1 minute) answers', async () => {
    // Refused (CDC01) while the watermark is more than a minute behind: a busy machine may be.
    const row = await waitFor('orders_as_of(now() - 1 minute) to answer', async () =>
      (await wh.query("SELECT current_user AS who, count(*)::int AS n FROM orders_as_of(now() - interval '1 minute')")).rows[0], 120_000, 1000);
    expect(row.who).toBe('analyst');
    const shape = await wh.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'orders_history' ORDER BY ordinal_position`);
    expect(shape.rows.map((x) => x.column_name)).toEqual(expect.arrayContaining(['order_id', 'status', 'valid_from', 'valid_to', 'is_current', 'op', 'source_lsn']));
  });
});

/** Orders with a change the processor rejected on purpose (cdc.rejected_events, read as admin). */
async function rejectedOrders(): Promise<string[]> {
  const c = await client(stackEnv().WAREHOUSE_ADMIN_URL);
  return (await c.query(
    "SELECT coalesce(array_agg(DISTINCT payload->'row'->>'order_id'), '{}') AS ids FROM cdc.rejected_events WHERE source_table = 'orders' AND payload ? 'row'",
  )).rows[0].ids;
}

describe('time travel on a table whose source gains a column', () => {
  const table = `tt_items_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  let captured: CapturedTable | null = null;
  let wh: Client;

  beforeAll(async () => {
    wh = await client(stackEnv().ANALYST_DATABASE_URL);
    await source().query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, name text NOT NULL, qty integer)`);
    // Before capture: arrives through the snapshot (op r), which starts its history.
    await source().query(`INSERT INTO ${table} VALUES (1, 'first', 1)`);
    captured = await captureTable(table, 'tt');
  });

  afterAll(async () => {
    await captured?.teardown();
    await source().query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    // The warehouse side of the test table, so analysts do not see it (its processor is stopped).
    await warehouse().query(`DROP VIEW IF EXISTS "${table}_history"; DROP FUNCTION IF EXISTS "${table}_as_of"(timestamptz);
      DROP TABLE IF EXISTS "${table}_fact", "${table}_latest", "${table}_truncates"; DELETE FROM cdc.offsets WHERE topic = '${captured?.prefix}.public.${table}'`).catch(() => undefined);
  });

  it('shows null before the column existed and the value after, in the history and as of any instant', async () => {
    const latest = async (id: number) => (await wh.query(`SELECT * FROM "${table}_latest" WHERE id = $1`, [id])).rows[0] ?? null;
    await waitFor('the snapshot row', () => latest(1), 90_000, 200);
    const dumps = await Dumps.open(table, 'id');
    await dumps.take(); // 0: as snapshotted
    await source().query(`UPDATE ${table} SET qty = 2 WHERE id = 1`);
    await dumps.take(); // 1
    await source().query(`ALTER TABLE ${table} ADD COLUMN note text`);
    await dumps.take(); // 2: the column exists, null
    await source().query(`UPDATE ${table} SET note = 'gift wrap' WHERE id = 1`);
    await source().query(`INSERT INTO ${table} VALUES (2, 'second', 5, 'with a note')`);
    await dumps.take(); // 3
    await source().query(`UPDATE ${table} SET qty = 3 WHERE id = 1`);
    await dumps.take(); // 4
    // Keys 1 and 2 may sit on different partitions, applied independently: wait for both.
    await waitFor('the last change', async () => (await latest(1))?.qty === 3, 90_000, 200);
    await waitFor('the second row', async () => (await latest(2))?.note === 'with a note', 90_000, 200);

    const history = (await wh.query(
      `SELECT op, name, qty, note, is_current, valid_from, valid_to FROM "${table}_history" WHERE id = 1 ORDER BY source_lsn`,
    )).rows;
    expect(history.map((v) => [v.op, v.qty, v.note, v.is_current])).toEqual([
      ['r', 1, null, false],
      ['u', 2, null, false],
      ['u', 2, 'gift wrap', false],
      ['u', 3, 'gift wrap', true],
    ]);
    for (let i = 0; i + 1 < history.length; i++) expect(history[i].valid_to).toEqual(history[i + 1].valid_from);
    // The new column comes last in the view, after the pipeline's columns.
    const viewCols = (await wh.query(`SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [`${table}_history`])).rows.map((r) => r.column_name);
    expect(viewCols).toEqual(['id', 'name', 'qty', 'valid_from', 'valid_to', 'is_current', 'op', 'source_lsn', 'source_txid', 'processed_at', 'note']);

    // As of each instant: the source's columns of that instant; a column the source did not have
    // yet is null in the warehouse.
    for (let n = 0; n < dumps.instants.length; n++) {
      const cols = await dumps.columns(n);
      const expected = await dumps.rows(n);
      expect({ n, d: diff(expected, await asOf(wh, table, 'id', dumps.instants[n], cols)) }).toEqual({ n, d: { missing: [], extra: [], different: [] } });
      if (!cols.includes('note')) {
        const notes = (await wh.query(`SELECT note FROM "${table}_as_of"($1::timestamptz)`, [dumps.instants[n]])).rows;
        expect(notes.every((r) => r.note === null)).toBe(true);
      }
    }
    const now = (await wh.query(`SELECT id::int, note FROM "${table}_as_of"(now()) ORDER BY id`)).rows;
    expect(now).toEqual([{ id: 1, note: 'gift wrap' }, { id: 2, note: 'with a note' }]);
    expect(captured!.processor.proc.exitCode).toBeNull();
  });
});
