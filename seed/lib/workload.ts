// The load generator's core, usable from other scripts (the benchmark imports runLoad).
//
// Throughput comes from pg's pipeline mode: each connection keeps up to `pipeline` statements
// on the wire, each with its own Sync, so each is still its own autocommit transaction (or one
// unit of --tx-size statements between BEGIN and COMMIT). A few such connections let
// PostgreSQL group-commit without hundreds of backends.
import { performance } from 'node:perf_hooks';
import { Client, QueryResult } from 'pg';
import { ConfigError } from './cli';
import { describeDbUrl } from './env';
import { errText } from './db';
import { Prng } from './prng';
import { Mix, DEFAULT_MIX, Op, pickOp } from './mix';
import { Pacer } from './pacing';
import { LogHistogram } from './histogram';
import { IdPool, PooledOrder } from './idpool';
import { OrderDraft, draftOrder } from './catalog';
import { Status, isStatus, nextStatus } from './lifecycle';
import { centsToDecimal } from './money';

export interface LoadOptions {
  /** Source database (role owning public.orders). */
  connectionString: string;
  /** Changes per second; Infinity = as fast as the connections allow. */
  rate: number;
  /** Stop after this many seconds (default: no limit, then maxChanges is required). */
  durationSec?: number;
  /** Stop after issuing this many changes (e.g. a benchmark preload). */
  maxChanges?: number;
  mix?: Mix;
  /** Changes per transaction; 1 (default) = each change its own autocommit statement. */
  txSize?: number;
  /** Database connections (default 8). */
  connections?: number;
  /** Transactions in flight per connection (default 8). */
  pipeline?: number;
  /** Seed for the choice of ops, products and rows (default: time-based). */
  seed?: number;
  /** Customers to draw from for new orders (default 300, like seed). */
  customers?: number;
  /** Abort to stop early; the summary is still returned. */
  signal?: AbortSignal;
  /** Called once connected, just before the first change is sent. */
  onStart?: () => void;
  /** Called about once a second while running. */
  onProgress?: (p: LoadProgress) => void;
  progressIntervalMs?: number;
  applicationName?: string;
}

export type OpCounts = Record<Op, number>;

export interface LoadProgress {
  elapsedSec: number;
  /** Requested changes/s (Infinity = unpaced). */
  targetRate: number;
  /** Committed changes/s over the last progress interval. */
  currentRate: number;
  /** Committed changes/s since the start. */
  averageRate: number;
  committed: OpCounts;
  total: number;
  /** Changes whose statement or transaction failed. */
  errors: number;
  inFlight: number;
  /** Changes never issued because every in-flight slot was busy for too long (the generator fell behind). */
  skipped: number;
}

export interface LoadSummary extends LoadProgress {
  /** Average rate ≥ 95% of the target. */
  reachedRate: boolean;
  interrupted: boolean;
  /** Updates/deletes turned into inserts because no idle order was available. */
  substituted: number;
  /** Updates/deletes that found their row gone (someone else deleted it): not counted as changes. */
  vanished: number;
  errorSamples: { message: string; count: number }[];
  /** Time from sending a statement (or transaction) to its commit being acknowledged. */
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  startedAt: Date;
  finishedAt: Date;
  settings: { connections: number; pipeline: number; txSize: number; mix: Mix; seed: number };
}

type Change =
  | { op: 'insert'; draft: OrderDraft }
  | { op: 'update'; order: PooledOrder; to: Status }
  | { op: 'delete'; order: PooledOrder };

// Named statements are parsed once per connection; the commit time of every row version is
// recorded in updated_at (clock_timestamp(), not now(): the transaction start would be
// earlier than the commit by the time spent queueing).
const SQL = {
  insert: {
    name: 'cdc_load_insert',
    text: `INSERT INTO public.orders (customer_id, product_name, amount, status, updated_at)
           VALUES ($1, $2, $3::numeric(12,2), 'pending', clock_timestamp()) RETURNING order_id::text AS id`,
  },
  update: { name: 'cdc_load_update', text: 'UPDATE public.orders SET status = $2, updated_at = clock_timestamp() WHERE order_id = $1' },
  delete: { name: 'cdc_load_delete', text: 'DELETE FROM public.orders WHERE order_id = $1' },
} as const;

const INITIAL_IDS = 200_000;

class Conn {
  client?: Client;
  inFlight = 0;
  ready = false;

  constructor(
    private readonly url: string,
    private readonly appName: string,
  ) {}

  async open(): Promise<void> {
    const client = new Client({ connectionString: this.url, application_name: this.appName, pipeline: true, connectionTimeoutMillis: 5000 });
    const lost = () => {
      this.ready = false;
    };
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    this.client = client;
    this.ready = true;
  }

  async close(): Promise<void> {
    this.ready = false;
    await this.client?.end().catch(() => undefined);
  }
}

export async function runLoad(opts: LoadOptions): Promise<LoadSummary> {
  const rate = opts.rate;
  const durationMs = (opts.durationSec ?? Infinity) * 1000;
  const maxChanges = opts.maxChanges ?? Infinity;
  const txSize = opts.txSize ?? 1;
  const nConn = opts.connections ?? 8;
  const pipeline = opts.pipeline ?? 8;
  const mix = opts.mix ?? DEFAULT_MIX;
  const seed = opts.seed ?? Date.now() % 2 ** 31;
  const customers = opts.customers ?? 300;
  if (!(rate > 0)) throw new ConfigError(`rate must be positive, got ${rate}`);
  if (!(durationMs > 0)) throw new ConfigError(`duration must be positive, got ${opts.durationSec}`);
  if (durationMs === Infinity && maxChanges === Infinity) throw new ConfigError('give a duration or maxChanges: the load must stop by itself');
  for (const [k, v] of Object.entries({ txSize, connections: nConn, pipeline })) {
    if (!Number.isSafeInteger(v) || v < 1) throw new ConfigError(`${k} must be a positive integer, got ${v}`);
  }

  const rng = new Prng(seed);
  const pool = new IdPool(rng);
  const conns = Array.from({ length: nConn }, () => new Conn(opts.connectionString, opts.applicationName ?? 'cdc-load'));
  // allSettled, not all: every attempt must have finished before closing, or a connection
  // still being opened would outlive the error and keep the process running.
  const opened = await Promise.allSettled(conns.map((c) => c.open()));
  const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) {
    await Promise.all(conns.map((c) => c.close()));
    throw new ConfigError(`cannot connect to the source database (${describeDbUrl(opts.connectionString)}): ${errText(failed.reason)}`);
  }

  try {
    await fillPool(conns[0].client!, pool);
  } catch (e) {
    await Promise.all(conns.map((c) => c.close()));
    const missing = /does not exist/.test(errText(e));
    throw new ConfigError(
      missing
        ? `table public.orders does not exist in the source database (${describeDbUrl(opts.connectionString)}); it is created with the stack (\`make up\`)`
        : `cannot read public.orders: ${errText(e)}`,
    );
  }

  const committed: OpCounts = { insert: 0, update: 0, delete: 0 };
  let errors = 0;
  let substituted = 0;
  let vanished = 0;
  let inFlight = 0;
  let issuedChanges = 0;
  const errorCounts = new Map<string, number>();
  const latency = new LogHistogram();
  // Backlog cap: a quarter second of work (at least a full set of slots) may be caught up.
  const unitRate = rate / txSize;
  const pacer = new Pacer(unitRate, Math.max(nConn * pipeline, Number.isFinite(unitRate) ? Math.ceil(unitRate / 4) : 1));

  const startedAt = new Date();
  const t0 = performance.now();
  const total = () => committed.insert + committed.update + committed.delete;

  const recordError = (e: unknown, n: number) => {
    errors += n;
    const msg = errText(e).slice(0, 200);
    errorCounts.set(msg, (errorCounts.get(msg) ?? 0) + n);
  };

  const planChange = (): Change => {
    let op = pickOp(mix, rng);
    if (op === 'update') {
      const order = pool.takeForUpdate();
      if (order) return { op, order, to: nextStatus(order.status, rng) };
      op = 'insert';
      substituted++;
    } else if (op === 'delete') {
      const order = pool.takeForDelete();
      if (order) return { op, order };
      op = 'insert';
      substituted++;
    }
    return { op: 'insert', draft: draftOrder(rng, customers) };
  };

  const send = (client: Client, c: Change): Promise<QueryResult> => {
    switch (c.op) {
      case 'insert':
        return client.query({ ...SQL.insert, values: [c.draft.customerId, c.draft.productName, centsToDecimal(c.draft.amountCents)] });
      case 'update':
        return client.query({ ...SQL.update, values: [c.order.id, c.to] });
      case 'delete':
        return client.query({ ...SQL.delete, values: [c.order.id] });
    }
  };

  const applyResult = (c: Change, r: QueryResult) => {
    if (c.op === 'insert') {
      pool.add({ id: Number((r.rows[0] as { id: string }).id), status: 'pending' });
      committed.insert++;
    } else if ((r.rowCount ?? 0) === 0) {
      vanished++;
    } else if (c.op === 'update') {
      pool.add({ id: c.order.id, status: c.to });
      committed.update++;
    } else {
      committed.delete++;
    }
  };

  let resolveDrained: (() => void) | undefined;
  const settle = (conn: Conn, started: number) => {
    conn.inFlight--;
    inFlight--;
    latency.record((performance.now() - started) * 1000); // µs: sub-millisecond commits are common
    if (inFlight === 0 && resolveDrained) resolveDrained();
    else schedulePump();
  };

  const issueUnit = (conn: Conn, n: number) => {
    const changes = Array.from({ length: n }, planChange);
    issuedChanges += n;
    conn.inFlight++;
    inFlight++;
    const client = conn.client!;
    const started = performance.now();
    if (txSize === 1) {
      send(client, changes[0]).then(
        (r) => applyResult(changes[0], r),
        (e) => recordError(e, 1),
      ).finally(() => settle(conn, started));
      return;
    }
    // All statements of a unit are queued in one go, so nothing else lands between BEGIN and COMMIT.
    const begin = client.query('BEGIN');
    const results = changes.map((c) => send(client, c));
    const commit = client.query('COMMIT');
    Promise.allSettled([begin, ...results, commit])
      .then((outcomes) => {
        const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed) return recordError(failed.reason, n);
        // COMMIT of an aborted transaction answers ROLLBACK instead of failing.
        const commitResult = (outcomes[outcomes.length - 1] as PromiseFulfilledResult<QueryResult>).value;
        if (commitResult.command !== 'COMMIT') return recordError(new Error(`transaction ended with ${commitResult.command}`), n);
        changes.forEach((c, i) => applyResult(c, (outcomes[i + 1] as PromiseFulfilledResult<QueryResult>).value));
      })
      .finally(() => settle(conn, started));
  };

  const pickConn = (): Conn | undefined => {
    let best: Conn | undefined;
    for (const c of conns) if (c.ready && c.inFlight < pipeline && (!best || c.inFlight < best.inFlight)) best = c;
    return best;
  };

  // A lost connection is reopened in the background; its slots simply stay unavailable meanwhile.
  let stopping = false;
  const reconnecting = new Set<Conn>();
  const reviveConnections = () => {
    for (const c of conns) {
      if (c.ready || reconnecting.has(c) || c.inFlight > 0) continue;
      reconnecting.add(c);
      c.close()
        .then(() => c.open())
        .catch(() => undefined) // retried on the next tick; its slots stay unavailable meanwhile
        .finally(() => reconnecting.delete(c));
    }
  };

  let timer: NodeJS.Timeout | undefined;
  let pumpQueued = false;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = () => {
      if (stopping) return;
      stopping = true;
      resolve();
    };
  });

  function schedulePump() {
    if (pumpQueued || stopping) return;
    pumpQueued = true;
    setImmediate(pump);
  }

  function pump() {
    pumpQueued = false;
    if (stopping) return;
    const elapsed = performance.now() - t0;
    // Units due before the end still go out when the timer fires a little late, so that a run
    // issues exactly rate × duration changes.
    let due = pacer.due(Math.min(elapsed, durationMs - 0.001));
    while (due > 0 && issuedChanges < maxChanges) {
      const conn = pickConn();
      if (!conn) break;
      issueUnit(conn, Math.min(txSize, maxChanges - issuedChanges));
      pacer.take(1);
      due--;
    }
    if (elapsed >= durationMs || issuedChanges >= maxChanges) return finish();
    if (!timer) {
      // Blocked on slots: completions pump again sooner; otherwise sleep until the next unit is due.
      const wait = due > 0 ? 5 : pacer.msUntilNext(performance.now() - t0);
      timer = setTimeout(
        () => {
          timer = undefined;
          pump();
        },
        Math.max(1, Math.min(wait, durationMs - elapsed, 50)),
      );
    }
  }

  const snapshot = (currentRate: number): LoadProgress => {
    const elapsedSec = (performance.now() - t0) / 1000;
    return {
      elapsedSec,
      targetRate: rate,
      currentRate,
      averageRate: elapsedSec > 0 ? total() / elapsedSec : 0,
      committed: { ...committed },
      total: total(),
      errors,
      inFlight,
      skipped: pacer.skipped * txSize,
    };
  };

  let lastTotal = 0;
  let lastTick = t0;
  const progressTimer = setInterval(() => {
    reviveConnections();
    const now = performance.now();
    const current = ((total() - lastTotal) * 1000) / Math.max(1, now - lastTick);
    lastTotal = total();
    lastTick = now;
    opts.onProgress?.(snapshot(current));
  }, opts.progressIntervalMs ?? 1000);

  opts.onStart?.();
  const onAbort = () => finish();
  if (opts.signal?.aborted) finish();
  opts.signal?.addEventListener('abort', onAbort);
  pump();
  await finished;

  if (timer) clearTimeout(timer);
  const issuingEnded = performance.now();
  if (inFlight > 0) {
    // In-flight statements are allowed to finish so that the totals match the database.
    await Promise.race([new Promise<void>((r) => (resolveDrained = r)), new Promise((r) => setTimeout(r, 30_000))]);
  }
  clearInterval(progressTimer);
  opts.signal?.removeEventListener('abort', onAbort);
  await Promise.all(conns.map((c) => c.close()));

  // The rate is judged over the issuing window: the drain of the last few statements is not load.
  const windowSec = (issuingEnded - t0) / 1000;
  const final = snapshot(0);
  final.averageRate = windowSec > 0 ? final.total / windowSec : 0;
  final.elapsedSec = windowSec;
  return {
    ...final,
    currentRate: final.averageRate,
    reachedRate: rate === Infinity || final.averageRate >= 0.95 * rate,
    interrupted: Boolean(opts.signal?.aborted),
    substituted,
    vanished,
    errorSamples: [...errorCounts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([message, count]) => ({ message, count })),
    latencyMs: { p50: latency.quantile(0.5) / 1000, p95: latency.quantile(0.95) / 1000, p99: latency.quantile(0.99) / 1000, max: latency.max / 1000 },
    startedAt,
    finishedAt: new Date(),
    settings: { connections: nConn, pipeline, txSize, mix, seed },
  };
}

/** The most recent orders are the likeliest to change next, as in a real shop. */
async function fillPool(client: Client, pool: IdPool): Promise<void> {
  const r = await client.query<{ id: string; status: string }>(
    `SELECT order_id::text AS id, status FROM public.orders ORDER BY order_id DESC LIMIT ${INITIAL_IDS}`,
  );
  for (const row of r.rows) if (isStatus(row.status)) pool.add({ id: Number(row.id), status: row.status });
}
