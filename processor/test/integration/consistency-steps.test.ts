// The watermark step as the processor runs it (consistency.ts) against a real PostgreSQL: a step
// held up in the warehouse is reported while it runs, naming the session that holds it up, and
// completes once that session lets go; a catch-up step stays linear in its backlog whatever the
// statistics of the queue tables say.
import { Client, Pool, type PoolClient } from 'pg';
import { scratchWarehouse, quietLog, item, type Scratch } from './scratch';
import { transactionFixture } from '../fixtures/transactions';
import { advanceConsistency, startConsistency, type ConsistencySteps } from '../../src/consistency';
import { createMetrics } from '../../src/metrics';

let wh: Scratch;
let stepPool: Pool;
let inspectPool: Pool;
let holderPool: Pool;
beforeAll(async () => {
  wh = await scratchWarehouse();
  stepPool = new Pool({ connectionString: wh.processorUrl, max: 1 });
  inspectPool = new Pool({ connectionString: wh.processorUrl, max: 1 });
  holderPool = new Pool({ connectionString: wh.processorUrl, max: 1 });
});
afterAll(async () => {
  await stepPool?.end();
  await inspectPool?.end();
  await holderPool?.end();
  await wh?.drop();
});

/**
 * Runs `sql` (a step) in a session of its own and counts the tuples its transaction read from
 * cdc.transactions. Its own session: pg_stat_xact_* show what a backend has not flushed yet,
 * which on PostgreSQL 15 may include its earlier transactions.
 */
async function stepReads(sql: string): Promise<{ row: Record<string, unknown>; reads: number }> {
  const c = new Client({ connectionString: wh.processorUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    const { rows: [row] } = await c.query(sql);
    const { rows: [read] } = await c.query(
      "SELECT (coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0))::int AS n FROM pg_stat_xact_user_tables WHERE relid = 'cdc.transactions'::regclass");
    await c.query('COMMIT');
    return { row, reads: read.n };
  } finally {
    await c.end();
  }
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('watermark steps', () => {
  let steps: ConsistencySteps | null = null;
  let holder: PoolClient | null = null;
  afterEach(async () => {
    steps?.stop();
    if (holder) {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      holder = null;
    }
  });

  it('reports a step held up by another session, naming it, and its end', async () => {
    await wh.admin.query("INSERT INTO cdc.consistency (topic_prefix) VALUES ('slowsrc')");
    // Another session of the processor's role holds the step's lock (as a second processor's
    // step would; the role sees the state of its own sessions only).
    holder = await holderPool.connect();
    await holder.query('BEGIN');
    await holder.query("SET LOCAL application_name = 'lock-holder'");
    await holder.query('SELECT pg_advisory_xact_lock(1128547121, 5)');
    const holderPid = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;

    const log = quietLog();
    steps = await startConsistency(stepPool, createMetrics(), log, { intervalMs: 60_000, slowMs: 300, inspect: inspectPool });
    expect(steps).not.toBeNull();
    await until('the slow-step warning', () => log.lines.some((l) => l.message === 'consistency watermark step still running'));
    const warning = log.lines.find((l) => l.message === 'consistency watermark step still running')!;
    expect(warning.level).toBe('warn');
    expect(warning.fields).toMatchObject({ state: 'active', waitEvent: 'Lock:advisory' });
    expect(warning.fields!.blockedBy).toEqual([expect.objectContaining({ pid: holderPid, application: 'lock-holder', state: 'idle in transaction', query: 'SELECT pg_backend_pid() AS pid' })]);
    expect(log.lines.some((l) => l.message === 'consistency watermark step ended')).toBe(false);

    await holder.query('ROLLBACK');
    await until('the end of the step', () => log.lines.some((l) => l.message === 'consistency watermark step ended'));
    const moved = await wh.admin.query("SELECT updated_at > now() - interval '1 minute' AS fresh FROM cdc.consistency WHERE topic_prefix = 'slowsrc'");
    expect(moved.rows[0].fresh).toBe(true);
    expect(log.lines.filter((l) => l.level === 'warn' && l.message !== 'consistency watermark step still running')).toEqual([]);
  });

  it('says nothing about a step that ends in time', async () => {
    const log = quietLog();
    steps = await startConsistency(stepPool, createMetrics(), log, { intervalMs: 60_000, slowMs: 2_000, inspect: inspectPool });
    steps!.kick();
    await new Promise((r) => setTimeout(r, 2_500));
    expect(log.lines.filter((l) => l.message.startsWith('consistency watermark step'))).toEqual([]);
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('names what a watermark standing still waits for, and says when it moves again', async () => {
    // Changes of xid 77 landed; its END record has not (held back upstream).
    await wh.admin.query(
      "INSERT INTO cdc.captured_tables (topic, connector, topic_prefix, source_table, warehouse_table) VALUES ('stillsrc.public.orders', 'still-source', 'stillsrc', 'public.orders', 'stillsrc_orders')");
    await wh.admin.query("INSERT INTO cdc.consistency (topic_prefix) VALUES ('stillsrc')");
    await wh.admin.query("INSERT INTO cdc.transaction_progress (topic_prefix, xid, collection, written, last_source_ts) VALUES ('stillsrc', 77, 'public.orders', 3, now())");
    const log = quietLog();
    try {
    steps = await startConsistency(stepPool, createMetrics(), log, { intervalMs: 100, slowMs: 60_000, stallMs: 400, inspect: inspectPool });
    const still = () => log.lines.filter((l) => l.message === 'consistency watermark stands still');
    await until('the still-watermark warning', () => still().length > 0);
    expect(still()[0]).toMatchObject({ level: 'warn', fields: { source: 'stillsrc' } });
    expect(String(still()[0].fields!.waitingFor)).toMatch(/^the END records of 1 transaction\(s\) \(3 change events in the warehouse, oldest committed .*\): none yet from stillsrc\.transaction$/);
    // Only the source that waits for something: slowsrc (above) stands still with nothing to wait for.
    expect(still().every((l) => l.fields!.source === 'stillsrc')).toBe(true);
    // Repeated while it stands, not at every step.
    await until('a second warning', () => still().length > 1);
    expect(still().length).toBeLessThan(5);
    await wh.admin.query(
      `INSERT INTO cdc.transactions (topic_prefix, id, xid, end_lsn, commit_ts, event_count, collections, kafka_partition, kafka_offset)
       VALUES ('stillsrc', '77:500', 77, 500, now(), 3, '{"public.orders": 3}', 0, 0)`);
    await until('the watermark moving again', () => log.lines.some((l) => l.message === 'consistency watermark no longer stands still'));
    expect(log.lines.find((l) => l.message === 'consistency watermark no longer stands still')).toMatchObject({ level: 'info', fields: { source: 'stillsrc' } });
    // Whole by its count (3 of 3 on a captured table): passed, its progress rows gone.
    expect((await wh.admin.query("SELECT count(*)::int AS n FROM cdc.transaction_progress WHERE topic_prefix = 'stillsrc'")).rows[0].n).toBe(0);
    } finally {
      steps?.stop();
      await wh.admin.query(
        "DELETE FROM cdc.transactions WHERE topic_prefix = 'stillsrc'; DELETE FROM cdc.transaction_progress WHERE topic_prefix = 'stillsrc'; DELETE FROM cdc.consistency WHERE topic_prefix = 'stillsrc'; DELETE FROM cdc.captured_tables WHERE topic_prefix = 'stillsrc'");
    }
  });

  it('steps on a warehouse without migration 0010, counting every time, and says so', async () => {
    await wh.admin.query(`ALTER FUNCTION cdc.advance_consistency(boolean) RENAME TO step_before_0010;
      CREATE OR REPLACE FUNCTION cdc.advance_consistency() RETURNS SETOF cdc.consistency LANGUAGE sql AS 'SELECT * FROM cdc.step_before_0010(true)'`);
    try {
      await wh.admin.query("INSERT INTO cdc.consistency (topic_prefix, pending) VALUES ('oldsrc', 5)");
      const log = quietLog();
      const metrics = createMetrics();
      steps = await startConsistency(stepPool, metrics, log, { intervalMs: 60_000 });
      expect(steps).not.toBeNull();
      expect(log.lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual(['warehouse lacks migration 0010 (make up applies it): every watermark step counts the pending transactions']);
      // Its first step ran and counted (nothing is pending for oldsrc).
      for (let i = 0; i < 100; i++) {
        const v = (await metrics.registry.getSingleMetric('cdc_transactions_pending')!.get()).values.find((x) => x.labels.source === 'oldsrc');
        if (v?.value === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await wh.admin.query("SELECT pending::int AS n FROM cdc.consistency WHERE topic_prefix = 'oldsrc'")).rows[0].n).toBe(0);
    } finally {
      steps?.stop();
      await wh.admin.query(`DELETE FROM cdc.consistency WHERE topic_prefix = 'oldsrc';
        ALTER FUNCTION cdc.step_before_0010(boolean) RENAME TO advance_consistency;
        CREATE OR REPLACE FUNCTION cdc.advance_consistency() RETURNS SETOF cdc.consistency LANGUAGE sql AS 'SELECT * FROM cdc.advance_consistency(true)'`);
    }
  });

  it('leaves the planner settings of its caller as they were', async () => {
    const c = await stepPool.connect();
    try {
      await c.query("BEGIN; SET LOCAL enable_seqscan = on; SET LOCAL enable_sort = off; SET LOCAL jit = on");
      await c.query('SELECT * FROM cdc.advance_consistency(false)');
      const { rows } = await c.query("SELECT current_setting('enable_seqscan') AS s, current_setting('enable_bitmapscan') AS b, current_setting('enable_sort') AS o, current_setting('jit') AS j");
      expect(rows).toEqual([{ s: 'on', b: 'on', o: 'off', j: 'on' }]);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
  });
});

describe('a catch-up step', () => {
  const fx = transactionFixture();
  const offsets = [0n, 0n];
  let txOffset = 0n;
  let xid = 5000n;
  let lsn = 1000n;
  let tsUs = 1_796_000_000_000_000n;
  /** n one-change source transactions of orders, each with its END record. */
  async function transactions(n: number) {
    const items = [];
    for (let i = 0; i < n; i++) {
      xid++;
      lsn += 10n;
      tsUs += 100n;
      const p = Number(xid % 2n);
      const c = await fx.change('c', xid, '1.00', lsn, tsUs, xid);
      items.push(item(fx.topic, p, offsets[p]++, c.decoded, c.key, c.value));
      const end = await fx.record('END', xid, lsn + 1n, tsUs / 1000n, { 'public.orders': 1n });
      items.push(item(fx.txTopic, 0, txOffset++, end.decoded, end.key, end.value));
    }
    return items;
  }

  it('reads each passed transaction a bounded number of times, even with "empty" statistics', async () => {
    await wh.admin.query(
      `INSERT INTO cdc.captured_tables (topic, connector, topic_prefix, source_table, warehouse_table) VALUES ('dbserver1.public.orders', 'orders-source', 'dbserver1', 'public.orders', 'orders')`);
    const writer = wh.writer({ options: { applyMode: 'transaction', readsTransactions: (p) => p === 'dbserver1' } });
    // A live warehouse: small steps, the queue tables analyzed while nearly empty and left with
    // the pages of busier times (as found on a warehouse after a benchmark: 1 row in 518 pages).
    for (let i = 0; i < 10; i++) {
      await writer.write(await transactions(3));
      await advanceConsistency(stepPool);
    }
    const backlog = 3000;
    for (let i = 0; i < backlog / 1000; i++) await writer.write(await transactions(1000));
    await wh.admin.query("UPDATE pg_class SET reltuples = 1, relpages = 518 WHERE oid IN ('cdc.transactions'::regclass, 'cdc.transaction_progress'::regclass)");
    const { row: w, reads } = await stepReads("SELECT consistent_lsn::text AS lsn, pending FROM cdc.advance_consistency() WHERE topic_prefix = 'dbserver1'");
    expect(w).toEqual({ lsn: String(lsn + 1n), pending: '0' });
    // (A nested loop over the passed transactions per progress row read backlog² of them: 9 million here.)
    expect(reads).toBeLessThan(20 * backlog);
    const left = await wh.admin.query("SELECT (SELECT count(*) FROM cdc.transactions)::int AS t, (SELECT count(*) FROM cdc.transaction_progress)::int AS g, (SELECT count(*) FROM orders_latest)::int AS l");
    expect(left.rows[0]).toEqual({ t: 1, g: 0, l: 30 + backlog });
  });
  it('counts pending transactions up to 10,000: ENDs far ahead of their changes do not make every step count them all', async () => {
    // The END records' lane runs ahead of the changes' lanes under load: 12,000 ENDs whose
    // changes have not landed yet. The step stops at the first open one and passes nothing.
    const before = await wh.admin.query("SELECT consistent_lsn::text AS lsn FROM cdc.consistency WHERE topic_prefix = 'dbserver1'");
    const writer = wh.writer({ options: { applyMode: 'transaction', readsTransactions: (p) => p === 'dbserver1' } });
    for (let batch = 0; batch < 12; batch++) {
      const ends = [];
      for (let i = 0; i < 1000; i++) {
        xid++;
        lsn += 10n;
        tsUs += 100n;
        const end = await fx.record('END', xid, lsn + 1n, tsUs / 1000n, { 'public.orders': 1n });
        ends.push(item(fx.txTopic, 0, txOffset++, end.decoded, end.key, end.value));
      }
      await writer.write(ends);
    }
    const [w] = await advanceConsistency(stepPool);
    expect(w.pending).toBe(10_000);
    expect(w.consistentLsn?.toString()).toBe(before.rows[0].lsn);
    const status = await wh.admin.query("SELECT transactions_pending::int AS n FROM public.pipeline_status WHERE source = 'dbserver1'");
    expect(status.rows[0].n).toBe(10_000);
    // A step not asked to count (the processor's, within a second of the last count) leaves the
    // count as it was and reads no more than the few ENDs it needs from the queue.
    await wh.admin.query("UPDATE cdc.consistency SET pending = 7 WHERE topic_prefix = 'dbserver1'");
    const { row: u, reads } = await stepReads("SELECT pending FROM cdc.advance_consistency(false) WHERE topic_prefix = 'dbserver1'");
    expect(u.pending).toBe('7');
    expect(reads).toBeLessThan(100);
    expect((await advanceConsistency(stepPool, undefined, false))[0].pending).toBe(7);
    expect((await advanceConsistency(stepPool))[0].pending).toBe(10_000);
  });

  it('counts pending at most once per interval when steps follow each other', async () => {
    await wh.admin.query("UPDATE cdc.consistency SET pending = 3 WHERE topic_prefix = 'dbserver1'");
    const metrics = createMetrics();
    const gauge = async () => (await metrics.registry.getSingleMetric('cdc_transactions_pending')!.get()).values.find((v) => v.labels.source === 'dbserver1')?.value;
    const steps = await startConsistency(stepPool, metrics, quietLog(), { intervalMs: 60_000, minGapMs: 5 });
    try {
      // The first step counts (10,000 ENDs still wait above); those kicked right after do not.
      for (let i = 0; i < 50 && (await gauge()) !== 10_000; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await gauge()).toBe(10_000);
      await wh.admin.query("UPDATE cdc.consistency SET pending = 3 WHERE topic_prefix = 'dbserver1'");
      const stepsRun = async () => (await metrics.registry.getSingleMetric('cdc_consistency_step_seconds')!.get()).values.find((v) => (v as { metricName?: string }).metricName === 'cdc_consistency_step_seconds_count')?.value ?? 0;
      // Steps kicked one after the other (each waits for the last to end), well within the
      // 60 s interval: none counts.
      for (let i = 0; i < 5; i++) {
        const before = await stepsRun();
        steps!.kick();
        for (let t = 0; t < 200 && (await stepsRun()) === before; t++) await new Promise((r) => setTimeout(r, 25));
        expect(await stepsRun()).toBe(before + 1);
      }
      expect(await gauge()).toBe(3);
    } finally {
      steps?.stop();
    }
  });
});
