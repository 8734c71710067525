// `make seed`: a realistic, reproducible batch of orders in the source, some of them moved
// through their lifecycle in later transactions so the pipeline sees inserts and updates.
import { Client } from 'pg';
import { ConfigError, EXIT, fmt, intFlag, parseFlags, plural, runMain } from './lib/cli';
import { requireEnv } from './lib/env';
import { connectDb, requireTable } from './lib/db';
import { centsToDecimal } from './lib/money';
import { CATALOGUE } from './lib/catalog';
import { STATUSES, Status } from './lib/lifecycle';
import { PlannedOrder, SEED_DEFAULTS, buildSeedPlan, summarizePlan } from './lib/seedplan';

const HELP = `Usage: make seed [ARGS="--orders N --seed N"]
       node dist/seed/seed.js [--orders N] [--seed N] [--customers N]

Inserts a batch of orders into the source table public.orders (SOURCE_DATABASE_URL) and moves
a share of them through pending -> paid -> shipped -> delivered (or cancelled), each step in a
later transaction. The same --seed always gives the same orders and history; running it again
adds another batch.

  --orders N      orders to insert (default ${SEED_DEFAULTS.orders})
  --seed N        PRNG seed (default 1)
  --customers N   size of the customer base (default ${SEED_DEFAULTS.customers})
  -h, --help      this text`;

/** Rows per statement and per transaction: big enough to be quick, small enough to look like an app. */
const CHUNK = 100;

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    orders: { type: 'string' },
    seed: { type: 'string' },
    customers: { type: 'string' },
  });
  if (flags.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const opts = {
    ...SEED_DEFAULTS,
    orders: intFlag('orders', flags.orders, SEED_DEFAULTS.orders, 1, 10_000_000),
    seed: intFlag('seed', flags.seed, 1, 0),
    customers: intFlag('customers', flags.customers, SEED_DEFAULTS.customers, 1, 100_000_000),
  };
  const url = requireEnv(process.env, 'SOURCE_DATABASE_URL');

  const plan = buildSeedPlan(opts);
  const sum = summarizePlan(plan);
  const started = Date.now();
  const db = await connectDb(url, 'source', 'cdc-seed');
  try {
    await requireTable(db, 'public.orders', 'it is created with the stack (`make up`)');
    const ids = await reserveIds(db.client, plan.orders.length);

    let insertTx = 0;
    for (let i = 0; i < plan.orders.length; i += CHUNK) {
      await inTransaction(db.client, () => insertOrders(db.client, ids.slice(i, i + CHUNK), plan.orders.slice(i, i + CHUNK)));
      insertTx++;
    }

    let updateTx = 0;
    let skipped = 0;
    for (const [round, members] of plan.rounds.entries()) {
      for (let i = 0; i < members.length; i += CHUNK) {
        const chunk = members.slice(i, i + CHUNK);
        const moves = chunk.map((k) => {
          const path = plan.orders[k].path;
          return { id: ids[k], from: round === 0 ? 'pending' : path[round - 1], to: path[round] };
        });
        const changed = await inTransaction(db.client, () => moveOrders(db.client, moves));
        skipped += moves.length - changed;
        updateTx++;
      }
    }

    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `seed: --seed ${opts.seed}: ${fmt(sum.orders)} orders from ${fmt(sum.customersUsed)} customers (of ${fmt(opts.customers)}), ` +
        `${sum.productsUsed} of ${CATALOGUE.length} products, total ${formatMoney(sum.totalCents)}`,
    );
    console.log(`seed: inserted ${fmt(sum.orders)} orders (order_id ${ids[0]}..${ids[ids.length - 1]}) in ${plural(insertTx, 'transaction')}`);
    console.log(
      `seed: lifecycle: ${(['paid', 'shipped', 'delivered', 'cancelled'] as Status[]).map((s) => `${fmt(sum.reached[s])} ${s}`).join(', ')}` +
        ` = ${fmt(sum.transitions - skipped)} status changes in ${plural(updateTx, 'transaction')}`,
    );
    if (skipped > 0) console.log(`seed: warning: ${fmt(skipped)} status changes found their order already changed or gone (someone else is writing)`);
    console.log(`seed: status now: ${STATUSES.map((s) => `${s} ${fmt(sum.final[s])}`).join(', ')}`);
    const total = await db.client.query<{ n: string }>('SELECT count(*)::text AS n FROM public.orders');
    console.log(
      `seed: done in ${secs} s: ${fmt(sum.orders + sum.transitions - skipped)} change events for the pipeline; public.orders now has ${fmt(Number(total.rows[0].n))} rows`,
    );
    return EXIT.ok;
  } finally {
    await db.client.end().catch(() => undefined);
  }
}

function formatMoney(cents: bigint): string {
  const [units, frac] = centsToDecimal(cents).split('.');
  return `${fmt(BigInt(units))}.${frac}`;
}

/** Ids come from the table's own sequence, so later app inserts never collide with them. */
async function reserveIds(client: Client, n: number): Promise<string[]> {
  const seq = await client.query<{ seq: string | null }>("SELECT pg_get_serial_sequence('public.orders', 'order_id') AS seq");
  const name = seq.rows[0].seq;
  if (!name) throw new ConfigError('public.orders.order_id has no sequence (expected bigserial)');
  const r = await client.query<{ id: string }>('SELECT nextval($1::regclass)::text AS id FROM generate_series(1, $2)', [name, n]);
  return r.rows.map((row) => row.id).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
}

async function insertOrders(client: Client, ids: string[], orders: readonly PlannedOrder[]): Promise<void> {
  // Amounts travel as text and are cast by PostgreSQL: never a float on the way.
  await client.query(
    `INSERT INTO public.orders (order_id, customer_id, product_name, amount, status, created_at, updated_at)
     SELECT id, customer_id, product_name, amount::numeric(12,2), 'pending', now(), clock_timestamp()
     FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS t(id, customer_id, product_name, amount)`,
    [ids, orders.map((o) => o.customerId), orders.map((o) => o.productName), orders.map((o) => centsToDecimal(o.amountCents))],
  );
}

/** Only moves an order that is still where the plan left it; returns how many moved. */
async function moveOrders(client: Client, moves: { id: string; from: Status; to: Status }[]): Promise<number> {
  const r = await client.query(
    `UPDATE public.orders o SET status = m.to_status, updated_at = clock_timestamp()
     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS m(id, from_status, to_status)
     WHERE o.order_id = m.id AND o.status = m.from_status`,
    [moves.map((m) => m.id), moves.map((m) => m.from), moves.map((m) => m.to)],
  );
  return r.rowCount ?? 0;
}

async function inTransaction<T>(client: Client, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

if (require.main === module) runMain('seed', main);
