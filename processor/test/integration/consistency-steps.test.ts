// The watermark step as the processor runs it (consistency.ts) against a real PostgreSQL: a step
// held up in the warehouse is reported while it runs, naming the session that holds it up, and
// completes once that session lets go.
import { Pool, type PoolClient } from 'pg';
import { scratchWarehouse, quietLog, type Scratch } from './scratch';
import { startConsistency, type ConsistencySteps } from '../../src/consistency';
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
});
