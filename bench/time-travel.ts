// Benchmark of time travel (docs/time-travel.md): builds `orders_fact` / `orders_latest` with the
// processor's own DDL (planDdl: tables, indexes, orders_history, orders_as_of) in a scratch
// database, fills them with a synthetic change history of at least a million rows, checks that
// orders_as_of agrees with orders_history, and reports EXPLAIN ANALYZE timings.
//
//   npm run build && node dist/bench/time-travel.js --url postgres://postgres@127.0.0.1:25440/postgres
//
// --url is an ADMIN connection to a PostgreSQL server: the script creates its own database
// (cdc_tt_bench_<pid>) there and drops it at the end (--keep leaves it). It never touches any
// other database; do not point it at a production server anyway (it loads the CPU for a minute).
import { Client } from 'pg';
import { parseArgs } from 'node:util';
import type { TableModel } from '../processor/src/columns';
import { planDdl } from '../processor/src/ddl';
import { asOfIndex } from '../processor/src/history';
import { literal } from '../processor/src/sql';

const HELP = `usage: node dist/bench/time-travel.js --url ADMIN_URL [--orders N] [--runs N] [--keep]
  --url      admin connection URL of a scratch PostgreSQL server (a database is created there)
  --orders   orders to simulate (default 210000: about 1,050,000 change rows)
  --runs     EXPLAIN ANALYZE runs per query; the median is reported (default 5)
  --keep     keep the database afterwards`;

const ORDERS: TableModel = {
  table: 'orders',
  keyColumns: ['order_id'],
  columns: [
    { name: 'order_id', pgType: 'bigint', kind: 'bigint' },
    { name: 'customer_id', pgType: 'bigint', kind: 'bigint' },
    { name: 'product_name', pgType: 'text', kind: 'text' },
    { name: 'amount', pgType: 'numeric(12,2)', kind: 'decimal' },
    { name: 'status', pgType: 'text', kind: 'text' },
    { name: 'created_at', pgType: 'timestamp with time zone', kind: 'text' },
    { name: 'updated_at', pgType: 'timestamp with time zone', kind: 'text' },
  ],
};

// A month of orders: each has 1..9 changes (mean 5) in its own transactions, 0-24 h apart:
// created (pending), paid, shipped, delivered, then amount corrections. 3% end deleted, 2% are
// deleted and inserted again under the same key, 5% make two changes in one transaction.
// Commit times are spread over the 30 days before now; LSNs follow commit order.
const GENERATE = (orders: number) => [
  `CREATE TEMP TABLE o AS
   SELECT i AS order_id, (i::float8 / ${orders}) * interval '30 days' AS created, 1 + floor(random() * 9)::int AS n,
          random() * interval '24 hours' AS gap, random() AS kind, 1 + floor(random() * 50000)::bigint AS customer_id,
          (array['Widget','Gadget','Doohickey','Sprocket','Gizmo'])[1 + floor(random() * 5)::int] AS product
   FROM generate_series(1, ${orders}) i`,
  `CREATE TEMP TABLE ev AS
   SELECT o.order_id, s AS step, o.customer_id, o.product,
          CASE WHEN s = 0 THEN 'c'
               WHEN o.kind < 0.03 AND s = o.n - 1 THEN 'd'
               WHEN o.kind >= 0.03 AND o.kind < 0.05 AND o.n >= 3 AND s = o.n - 2 THEN 'd'
               WHEN o.kind >= 0.03 AND o.kind < 0.05 AND o.n >= 3 AND s = o.n - 1 THEN 'c'
               ELSE 'u' END AS op,
          o.created + (CASE WHEN o.kind >= 0.95 AND s = 2 THEN 1 ELSE s END) * o.gap AS t,
          (array['pending','paid','shipped','delivered'])[least(s, 3) + 1] AS status,
          (10 + (o.order_id % 990) + s)::numeric(12,2) AS amount
   FROM o, generate_series(0, o.n - 1) s`,
  `CREATE TEMP TABLE span AS SELECT min(t) AS lo, max(t) AS hi, now() - interval '1 second' AS stop FROM ev`,
  `CREATE TEMP TABLE ev2 AS
   SELECT ev.*, span.stop - interval '30 days' + (ev.t - span.lo) / extract(epoch FROM span.hi - span.lo) * extract(epoch FROM interval '30 days') AS ts
   FROM ev, span`,
  `INSERT INTO orders_fact (order_id, customer_id, product_name, amount, status, created_at, updated_at,
                            op, source_ts, source_lsn, source_txid, kafka_topic, kafka_partition, kafka_offset, processed_at)
   SELECT e.order_id,
          CASE WHEN e.op = 'd' THEN NULL ELSE e.customer_id END, CASE WHEN e.op = 'd' THEN NULL ELSE e.product END,
          CASE WHEN e.op = 'd' THEN NULL ELSE e.amount END, CASE WHEN e.op = 'd' THEN NULL ELSE e.status END,
          CASE WHEN e.op = 'd' THEN NULL ELSE first_value(e.ts) OVER (PARTITION BY e.order_id ORDER BY e.step) END,
          CASE WHEN e.op = 'd' THEN NULL ELSE e.ts END,
          e.op, e.ts, 1000000 + 100 * row_number() OVER (ORDER BY e.ts, e.order_id, e.step),
          1000 + dense_rank() OVER (ORDER BY e.ts, e.order_id), 'dbserver1.public.orders', (e.order_id % 2)::int,
          row_number() OVER (ORDER BY e.ts, e.order_id, e.step), e.ts + interval '300 milliseconds'
   FROM ev2 e ORDER BY e.ts, e.order_id, e.step`,
  // What the processor's merge leaves in _latest: each key's newest change, unless a delete.
  `INSERT INTO orders_latest (order_id, customer_id, product_name, amount, status, created_at, updated_at, source_ts, source_lsn, processed_at)
   SELECT order_id, customer_id, product_name, amount, status, created_at, updated_at, source_ts, source_lsn, processed_at
   FROM (SELECT DISTINCT ON (order_id) * FROM orders_fact ORDER BY order_id, source_lsn DESC) x WHERE op <> 'd'`,
  'VACUUM ANALYZE orders_fact',
  'VACUUM ANALYZE orders_latest',
];

interface Case {
  name: string;
  sql: string;
}

async function explain(c: Client, sql: string): Promise<{ exec: number; plan: number; rows: number }> {
  const json = await c.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`);
  const top = json.rows[0]['QUERY PLAN'][0];
  return { exec: top['Execution Time'], plan: top['Planning Time'], rows: top.Plan['Actual Rows'] };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x).toString());
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { url: { type: 'string' }, orders: { type: 'string' }, runs: { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || !values.url) {
    console.log(HELP);
    process.exit(values.help ? 0 : 2);
  }
  const orders = Number(values.orders ?? 210000);
  const runs = Number(values.runs ?? 5);
  const dbName = `cdc_tt_bench_${process.pid}`;
  const admin = new Client({ connectionString: values.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(values.url);
  url.pathname = `/${dbName}`;
  const c = new Client({ connectionString: url.toString(), options: '-c TimeZone=UTC' });
  try {
    await c.connect();
    const server = (await c.query(`SELECT version() AS v, current_setting('shared_buffers') AS sb, current_setting('work_mem') AS wm, current_setting('jit') AS jit, current_setting('max_parallel_workers_per_gather') AS par`)).rows[0];
    log(`${server.v}; shared_buffers ${server.sb}, work_mem ${server.wm}, jit ${server.jit}, parallel workers/gather ${server.par}`);

    const plan = planDdl(ORDERS, null, null);
    for (const sql of plan.statements) await c.query(sql);
    let t0 = Date.now();
    for (const sql of GENERATE(orders)) await c.query(sql);
    log(`generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const shape = (await c.query(`SELECT count(*)::int AS changes, count(DISTINCT order_id)::int AS keys,
        count(*) FILTER (WHERE op = 'd')::int AS deletes, (SELECT count(*)::int FROM orders_latest) AS live,
        min(source_ts) AS lo, max(source_ts) AS hi,
        pg_size_pretty(pg_relation_size('orders_fact')) AS fact_size,
        pg_size_pretty(pg_relation_size('orders_fact_event_uq')) AS key_idx,
        pg_size_pretty(pg_relation_size('${asOfIndex('orders')}')) AS ts_idx
      FROM orders_fact`)).rows[0];
    log(JSON.stringify(shape));

    // Exactness of the fast path: as_of(ts) = the versions valid at ts, at 20 instants.
    t0 = Date.now();
    const cols = 'order_id, customer_id, product_name, amount, status, created_at, updated_at';
    const CHECKS = 10;
    for (let i = 0; i <= CHECKS; i++) {
      const at = new Date(new Date(shape.lo).getTime() - 3600_000 + ((new Date(shape.hi).getTime() + 7200_000 - new Date(shape.lo).getTime()) * i) / CHECKS);
      const diff = await c.query(
        `SELECT (SELECT count(*) FROM (SELECT ${cols}, source_ts AS valid_from FROM orders_as_of($1) EXCEPT ALL
                 SELECT ${cols}, valid_from FROM orders_history WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)) a)::int AS extra,
                (SELECT count(*) FROM (SELECT ${cols}, valid_from FROM orders_history WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1) EXCEPT ALL
                 SELECT ${cols}, source_ts FROM orders_as_of($1)) a)::int AS missing`,
        [at],
      );
      if (diff.rows[0].extra || diff.rows[0].missing) throw new Error(`as_of(${at.toISOString()}) differs from the history: ${JSON.stringify(diff.rows[0])}`);
    }
    const chain = (await c.query(`SELECT count(*)::int AS bad FROM (
        SELECT valid_to, lead(valid_from) OVER (PARTITION BY order_id ORDER BY source_lsn) AS next_from, is_current,
               lead(source_lsn) OVER (PARTITION BY order_id ORDER BY source_lsn) AS next_lsn
        FROM orders_history) h
      WHERE (next_lsn IS NOT NULL AND valid_to > next_from)`)).rows[0];
    if (chain.bad) throw new Error(`${chain.bad} versions overlap the next one`);
    log(`as_of agrees with orders_history at ${CHECKS + 1} instants; versions never overlap (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

    // Instants are written into the SQL as literals, as an analyst would type them.
    const hi = new Date(shape.hi);
    const day = (d: number) => `${literal(new Date(Date.UTC(hi.getUTCFullYear(), hi.getUTCMonth(), hi.getUTCDate() - d)).toISOString())}::timestamptz`;
    // Keys live 15 days ago, and the key with the longest history.
    const keys = [
      ...(await c.query(`SELECT order_id FROM orders_as_of(${day(15)}) ORDER BY random() LIMIT 4`)).rows.map((r) => r.order_id),
      (await c.query('SELECT order_id FROM orders_fact GROUP BY order_id ORDER BY count(*) DESC LIMIT 1')).rows[0].order_id,
    ];
    const cases: Case[] = [
      { name: "orders_as_of(now() - interval '1 minute'), all rows", sql: "SELECT * FROM orders_as_of(now() - interval '1 minute')" },
      { name: 'orders_as_of(1 day ago), all rows', sql: `SELECT * FROM orders_as_of(${day(1)})` },
      { name: 'orders_as_of(15 days ago), all rows', sql: `SELECT * FROM orders_as_of(${day(15)})` },
      { name: 'orders_as_of(27 days ago), all rows', sql: `SELECT * FROM orders_as_of(${day(27)})` },
      { name: 'order book at the end of a day 15 days ago: count, sum by status', sql: `SELECT status, count(*), sum(amount) FROM orders_as_of(${day(15)} - interval '1 microsecond') GROUP BY status` },
      { name: 'one order as of 15 days ago: orders_as_of(ts) WHERE order_id = k', sql: `SELECT * FROM orders_as_of(${day(15)}) WHERE order_id = ${keys[0]}` },
      ...keys.map((k, i) => ({ name: `one key's history: orders_history WHERE order_id = k (${i < 4 ? `random key ${i + 1}` : 'the longest history'})`, sql: `SELECT * FROM orders_history WHERE order_id = ${k} ORDER BY valid_from, source_lsn` })),
      { name: 'time spent in each status (whole history)', sql: TIME_IN_STATUS },
      { name: 'orders by status at the end of each of 30 days (whole history)', sql: DAILY.replace('$1', day(30)).replace('$2', day(0)) },
      { name: 'for comparison: as of 15 days ago through the view (valid_from <= ts < valid_to)', sql: `SELECT * FROM orders_history WHERE valid_from <= ${day(15)} AND (valid_to IS NULL OR valid_to > ${day(15)})` },
    ];
    const report: string[] = [];
    report.push(`Server: ${server.v.split(' on ')[0]}; shared_buffers ${server.sb}, work_mem ${server.wm}, jit ${server.jit}, max_parallel_workers_per_gather ${server.par}.`);
    report.push(`History: ${shape.changes.toLocaleString('en-US')} change rows, ${shape.keys.toLocaleString('en-US')} keys (${shape.live.toLocaleString('en-US')} live, ${shape.deletes.toLocaleString('en-US')} deletes) over 30 days; orders_fact ${shape.fact_size}, index (order_id, source_lsn, op) ${shape.key_idx}, index (source_ts) INCLUDE (order_id) ${shape.ts_idx}.`);
    report.push('', '| query | rows | execution ms (median of ' + runs + ') | planning ms |', '|---|---:|---:|---:|');
    const run = async (cs: Case[], suffix = '') => {
      for (const k of cs) {
        await explain(c, k.sql); // warm-up
        const rs = [];
        for (let i = 0; i < runs; i++) rs.push(await explain(c, k.sql));
        const line = `| ${k.name}${suffix} | ${rs[0].rows.toLocaleString('en-US')} | ${ms(median(rs.map((r) => r.exec)))} | ${ms(median(rs.map((r) => r.plan)))} |`;
        report.push(line);
        log(line);
      }
    };
    await run(cases);
    await c.query(`DROP INDEX ${asOfIndex('orders')}`);
    await run(cases.slice(0, 4), ' **without the source_ts index**');
    console.log(report.join('\n'));
  } finally {
    await c.end().catch(() => undefined);
    if (!values.keep) await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
    else log(`kept database ${dbName}`);
    await admin.end();
  }
}

export const TIME_IN_STATUS = `
SELECT status,
       count(*) AS orders,
       count(*) FILTER (WHERE still_there) AS still_there,
       avg(spent) FILTER (WHERE NOT still_there) AS avg_time_when_left,
       max(spent) FILTER (WHERE NOT still_there) AS max_time_when_left
FROM (SELECT order_id, status,
             sum(coalesce(valid_to, now()) - valid_from) AS spent,
             bool_or(is_current) AS still_there
      FROM orders_history
      GROUP BY order_id, status) per_order
GROUP BY status
ORDER BY status`;

export const DAILY = `
SELECT midnight - interval '1 day' AS day, h.status, count(*) AS orders, sum(h.amount) AS amount
FROM orders_history h
CROSS JOIN LATERAL generate_series(
       greatest(date_trunc('day', h.valid_from) + interval '1 day', $1 + interval '1 day'),
       least(date_trunc('day', coalesce(h.valid_to, 'infinity')), $2),
       interval '1 day') AS midnight
GROUP BY 1, 2
ORDER BY 1, 2`;

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`[bench] failed: ${err.stack ?? err}\n`);
    process.exit(1);
  });
}
