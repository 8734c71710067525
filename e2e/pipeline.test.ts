// The mission's checks and the pipeline's core guarantees, against the real stack:
// source PostgreSQL → Debezium → Kafka (Avro) → processor → warehouse.
import { closeAll, source, warehouse, waitFor } from './lib/stack';

const customer = () => 100_000 + Math.floor(Math.random() * 800_000_000);

async function insertOrder(row: { customer_id: number; product_name: string; amount: string; status: string; created_at?: string }): Promise<string> {
  const res = await source().query(
    `INSERT INTO orders (customer_id, product_name, amount, status, created_at)
     VALUES ($1, $2, $3::numeric, $4, coalesce($5::timestamptz, now())) RETURNING order_id`,
    [row.customer_id, row.product_name, row.amount, row.status, row.created_at ?? null],
  );
  return res.rows[0].order_id;
}

const latest = async (id: string) =>
  (await warehouse().query('SELECT *, amount::text AS amount_text FROM orders_latest WHERE order_id = $1', [id])).rows[0] ?? null;
const facts = async (id: string) =>
  (await warehouse().query('SELECT *, amount::text AS amount_text FROM orders_fact WHERE order_id = $1 ORDER BY source_lsn', [id])).rows;

afterAll(closeAll);

describe('the mission checks', () => {
  it('an inserted order appears in orders_latest and orders_fact within 10 s', async () => {
    const started = Date.now();
    const id = await insertOrder({ customer_id: customer(), product_name: 'iPhone 15', amount: '999.99', status: 'pending' });
    const row = await waitFor('the order in orders_latest', () => latest(id), 10_000, 20);
    const delay = Date.now() - started;
    console.log(`insert → visible in orders_latest: ${delay} ms`);
    expect(row.amount_text).toBe('999.99');
    expect(row.product_name).toBe('iPhone 15');
    const history = await facts(id);
    expect(history).toHaveLength(1);
    expect(history[0].op).toBe('c');
    expect(history[0].processed_at.getTime()).toBeGreaterThanOrEqual(history[0].source_ts.getTime());
  });

  it('an update adds a history row and changes the current row', async () => {
    const id = await insertOrder({ customer_id: customer(), product_name: 'Kindle', amount: '119.00', status: 'pending' });
    await waitFor('the insert', () => latest(id));
    await source().query("UPDATE orders SET status = 'shipped', updated_at = now() WHERE order_id = $1", [id]);
    const row = await waitFor('the update in orders_latest', async () => {
      const r = await latest(id);
      return r?.status === 'shipped' ? r : null;
    });
    expect(row.amount_text).toBe('119.00');
    const history = await facts(id);
    expect(history.map((f) => [f.op, f.status])).toEqual([['c', 'pending'], ['u', 'shipped']]);
    expect(BigInt(history[1].source_lsn)).toBeGreaterThan(BigInt(history[0].source_lsn));
  });

  it('the dashboard query on orders_latest equals the same query on the source', async () => {
    // Orders with a rejected change (a validation rule failed) are left out on both sides:
    // the warehouse holds them back on purpose, and cdc.rejected_events says why.
    const query = `SELECT status, count(*)::text AS orders, sum(amount)::text AS revenue FROM %T
                   WHERE order_id <> ALL ($1::bigint[]) GROUP BY status ORDER BY status`;
    const marker = await insertOrder({ customer_id: customer(), product_name: 'marker', amount: '1.00', status: 'pending' });
    await waitFor('the marker order', () => latest(marker));
    const rejected = (await warehouse().query(
      "SELECT coalesce(array_agg(DISTINCT (payload->'row'->>'order_id')::bigint), '{}') AS ids FROM cdc.rejected_events WHERE source_table = 'orders' AND payload ? 'row'",
    )).rows[0].ids;
    const onSource = (await source().query(query.replace('%T', 'orders'), [rejected])).rows;
    const onWarehouse = await waitFor('warehouse to match the source', async () => {
      const rows = (await warehouse().query(query.replace('%T', 'orders_latest'), [rejected])).rows;
      return JSON.stringify(rows) === JSON.stringify(onSource) ? rows : null;
    }, 30_000);
    expect(onWarehouse).toEqual(onSource);
    expect(onSource.length).toBeGreaterThan(0);
  });
});

describe('exactness and the rest of a row life', () => {
  it('a delete removes the current row and keeps its history', async () => {
    const id = await insertOrder({ customer_id: customer(), product_name: 'To delete', amount: '5.00', status: 'pending' });
    await waitFor('the insert', () => latest(id));
    await source().query('DELETE FROM orders WHERE order_id = $1', [id]);
    await waitFor('the delete', async () => (await latest(id)) === null);
    const history = await facts(id);
    expect(history.map((f) => f.op)).toEqual(['c', 'd']);
    expect(history[1].order_id).toBe(id);
  });

  it('keeps decimals exact: 0.01, 999.99, 9999999999.99', async () => {
    const amounts = ['0.01', '999.99', '9999999999.99', '0.00', '1234567.89'];
    const c = customer();
    const ids: string[] = [];
    for (const amount of amounts) ids.push(await insertOrder({ customer_id: c, product_name: `amount ${amount}`, amount, status: 'paid' }));
    const rows = await waitFor('all amounts', async () => {
      const r = (await warehouse().query('SELECT order_id, amount::text AS amount FROM orders_latest WHERE customer_id = $1 ORDER BY order_id', [c])).rows;
      return r.length === amounts.length ? r : null;
    });
    expect(rows.map((r) => r.amount)).toEqual(amounts);
    const sums = await Promise.all([
      source().query('SELECT sum(amount)::text AS s FROM orders WHERE customer_id = $1', [c]),
      warehouse().query('SELECT sum(amount)::text AS s FROM orders_latest WHERE customer_id = $1', [c]),
    ]);
    expect(sums[1].rows[0].s).toBe(sums[0].rows[0].s);
    expect(sums[0].rows[0].s).toBe('10001235567.88');
  });

  it('keeps instants exact on both sides of daylight-saving changes, to the microsecond', async () => {
    const instants = [
      '2025-03-30 00:59:59.999999+00', // Europe: just before clocks go forward
      '2025-03-30 01:00:00.000001+00', // just after
      '2025-11-02 05:59:59.5+00', // US Eastern: before falling back
      '2025-11-02 06:00:00.25+00', // after
      '1969-12-31 23:59:59.999999+00', // before the epoch
    ];
    const c = customer();
    for (const at of instants) await insertOrder({ customer_id: c, product_name: 'dst', amount: '1.00', status: 'paid', created_at: at });
    const q = `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at, extract(epoch FROM created_at)::text AS epoch
               FROM %T WHERE customer_id = $1 ORDER BY created_at`;
    const expected = (await source().query(q.replace('%T', 'orders'), [c])).rows;
    const got = await waitFor('all instants', async () => {
      const r = (await warehouse().query(q.replace('%T', 'orders_latest'), [c])).rows;
      return r.length === instants.length ? r : null;
    });
    expect(got).toEqual(expected);
    expect(got[1].at).toBe('2025-03-30 00:59:59.999999');
  });

  it('carries the source commit time with microseconds and the source position', async () => {
    const t0 = Date.now();
    const id = await insertOrder({ customer_id: customer(), product_name: 'position', amount: '2.00', status: 'pending' });
    const insertUs = BigInt(Date.now() - t0 + 1) * 1000n;
    const [fact] = await waitFor('the fact row', async () => {
      const f = await facts(id);
      return f.length ? f : null;
    });
    const src = await source().query("SELECT (extract(epoch FROM created_at) * 1e6)::bigint::text AS us FROM orders WHERE order_id = $1", [id]);
    const factUs = await warehouse().query(
      "SELECT (extract(epoch FROM source_ts) * 1e6)::bigint::text AS us FROM orders_fact WHERE order_id = $1", [id]);
    // The commit follows the statement that set created_at (now() = transaction start), within the
    // insert's own round trip (same host, same clock; a busy machine can make that long).
    const gap = BigInt(factUs.rows[0].us) - BigInt(src.rows[0].us);
    expect({ gap, ok: gap >= 0n && gap <= insertUs }).toEqual({ gap, ok: true });
    expect(BigInt(fact.source_lsn)).toBeGreaterThan(0n);
    expect(fact.source_txid).not.toBeNull();
    expect(fact.kafka_topic).toBe('dbserver1.public.orders');
  });
});
