// Replication slot figures read through the monitoring role, against the stack's source
// PostgreSQL: a slot of the test's own that confirms nothing while WAL is written.
import * as crypto from 'crypto';
import { Pool } from 'pg';
import { readSlots } from '../../src/slots';

const need = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run through infra/with-env.sh after make up`);
  return v;
};

const slot = `cdc_it_slot_${crypto.randomBytes(4).toString('hex')}`;
const table = `cdc_it_wal_${crypto.randomBytes(4).toString('hex')}`;
let admin: Pool;
let monitor: Pool;

beforeAll(async () => {
  admin = new Pool({ connectionString: need('SOURCE_ADMIN_URL'), max: 1 });
  monitor = new Pool({ connectionString: need('SOURCE_MONITOR_URL'), max: 1 });
  await admin.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, pad text)`);
});

afterAll(async () => {
  await admin.query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => undefined);
  await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  await admin.end();
  await monitor.end();
});

describe('replication slot metrics', () => {
  it('shows the WAL a slot keeps and has not confirmed, and the age of its oldest unconfirmed commit', async () => {
    await admin.query(`INSERT INTO ${table} SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g`);
    await new Promise((r) => setTimeout(r, 1100));
    const ours = (await readSlots(monitor)).find((s) => s.slot === slot);
    expect(ours).toBeDefined();
    expect(ours!.active).toBe(false);
    expect(ours!.invalidated).toBe(false);
    // The insert's 2,000 rows of ~200 bytes are in the WAL the slot has not confirmed.
    expect(ours!.unconfirmedBytes!).toBeGreaterThan(400_000);
    expect(ours!.retainedBytes!).toBeGreaterThanOrEqual(ours!.unconfirmedBytes!);
    // The oldest unconfirmed commit (the CREATE TABLE or the insert) is at least a second old.
    expect(ours!.oldestUnconfirmedSeconds).not.toBeNull();
    expect(ours!.oldestUnconfirmedSeconds!).toBeGreaterThanOrEqual(1);
  });

  it('says nothing waits when the unconfirmed WAL holds no commit', async () => {
    const quiet = `${slot}_q`;
    await admin.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [quiet]);
    try {
      await admin.query('CHECKPOINT'); // WAL without a transaction commit
      const ours = (await readSlots(monitor)).find((s) => s.slot === quiet)!;
      expect(ours.unconfirmedBytes!).toBeGreaterThan(0);
      if (ours.oldestUnconfirmedSeconds !== 0) {
        // Another session's commit may have landed in between: then it is the oldest, and recent.
        expect(ours.oldestUnconfirmedSeconds).not.toBeNull();
        expect(ours.oldestUnconfirmedSeconds!).toBeLessThan(60);
      }
    } finally {
      await admin.query('SELECT pg_drop_replication_slot($1)', [quiet]);
    }
  });

  it('cannot write or read captured data through the monitoring role', async () => {
    await expect(monitor.query(`INSERT INTO ${table} VALUES (-1, 'no')`)).rejects.toThrow(/read-only transaction|permission denied/);
    await expect(monitor.query('SELECT count(*) FROM public.orders')).rejects.toThrow(/permission denied/);
  });
});
