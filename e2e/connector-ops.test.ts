// Capture survives what a user does to a running connector: REST restarts, pause/resume,
// stop/resume, a config change, delete and re-create, kill -9 of the Connect worker during a
// large transaction, a restart after the captured table idled while other tables were busy, and
// a stored offset in the middle of a transaction with the slot between its commit and its change
// LSN (the state seen on a lived-in stack). After each: the task RUNNING, changes flowing, the
// warehouse equal to the source and every change in <table>_fact exactly once.
// Disruptive (it kills Kafka Connect): lib/sequencer.js runs it last.
import * as fs from 'fs';
import * as path from 'path';
import type { PoolClient } from 'pg';
import { spawnSync } from 'child_process';
import { closeAll, REPO, run, source, sourceAdmin, stackEnv, warehouse, waitFor } from './lib/stack';
import { captureTable, type CapturedTable } from './lib/processes';
import { currentLsn, lsnText, must, rest, slot, status, waitRunning, waitState } from './lib/connect';

const table = `ops_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
const busy = `${table}_busy`;
let cap: CapturedTable;
let nextId = 1;
let changes = 0; // every row change made at the source: each must be one fact
const figures: string[] = [];

beforeAll(async () => {
  await source().query(`CREATE TABLE ${table} (id integer PRIMARY KEY, v integer NOT NULL, note text)`);
  await source().query(`CREATE TABLE ${busy} (id bigserial PRIMARY KEY, pad text)`);
  await source().query(`INSERT INTO ${table} (id, v) SELECT g, 0 FROM generate_series(1, 20) g`);
  nextId = 21;
  changes = 20; // snapshot reads
  // A heartbeat every second (the table's publication carries the heartbeat table, as the
  // orders publication does), so the slot follows the WAL while the table is idle.
  cap = await captureTable(table, 'ops', { connector: { 'heartbeat.interval.ms': '1000' } });
  await sourceAdmin().query(`ALTER PUBLICATION ${cap.publication} ADD TABLE public.debezium_heartbeat`);
  await expectExact('the snapshot');
});

afterAll(async () => {
  if (figures.length) console.log(`connector operations (time until the task RUNNING, then the stream verified exact):\n  ${figures.join('\n  ')}`);
  await cap?.teardown();
  await source().query(`DROP TABLE IF EXISTS ${table}, ${busy}`).catch(() => undefined);
  await closeAll();
});

/** Inserts, updates and deletes a few rows: each row change is counted. */
async function writeSome(c: { query: PoolClient['query'] } = source()): Promise<void> {
  const first = nextId;
  nextId += 5;
  changes += (await c.query(`INSERT INTO ${table} (id, v) SELECT g, 0 FROM generate_series($1::int, $2::int) g`, [first, first + 4])).rowCount!;
  changes += (await c.query(`UPDATE ${table} SET v = v + 1 WHERE id IN (SELECT id FROM ${table} ORDER BY random() LIMIT 3)`)).rowCount!;
  changes += (await c.query(`DELETE FROM ${table} WHERE id = (SELECT min(id) FROM ${table} WHERE id > 20)`)).rowCount!;
}

const snapshotOf = async (db: { query: (s: string) => Promise<{ rows: any[] }> }, rel: string) =>
  JSON.stringify((await db.query(`SELECT id, v, note FROM "${rel}" ORDER BY id`)).rows);

/**
 * The warehouse equals the source and holds each change once. Fails early when the task FAILED
 * (a task shown RUNNING that moves nothing fails at the bound).
 */
async function expectExact(what: string, timeoutMs = 120_000): Promise<void> {
  const want = await snapshotOf(source(), table);
  let seen = 0;
  const failed = await waitFor(`${what}: ${table}_latest equal to the source and ${changes} facts`, async () => {
    const s = await status(cap.connector);
    if (s?.tasks.includes('FAILED')) return s.trace;
    const facts = await warehouse().query(`SELECT count(*)::int AS n FROM "${table}_fact"`).catch(() => null);
    seen = facts?.rows[0].n ?? seen;
    if (seen < changes) throw new Error(`${seen} facts so far`);
    return (await snapshotOf(warehouse(), `${table}_latest`)) === want;
  }, timeoutMs, 300);
  if (failed !== true) throw new Error(`${what}: task FAILED: ${String(failed).slice(0, 800)}`);
  const f = await warehouse().query(`SELECT count(*)::int AS n, count(DISTINCT (id, v, op))::int AS d FROM "${table}_fact"`);
  expect(f.rows[0]).toEqual({ n: changes, d: changes });
}

/** Changes before, the operation, changes while it settles, then exactness; records the time to RUNNING. */
async function operation(name: string, act: () => Promise<void>): Promise<void> {
  await writeSome();
  const t0 = Date.now();
  await act();
  await writeSome();
  const ms = await waitRunning(cap.connector, t0);
  await writeSome();
  await expectExact(`after ${name}`);
  figures.push(`${name}: RUNNING after ${ms} ms; exact after ${Date.now() - t0} ms`);
}

/** A script of the repo with the stack's env (stdout and stderr together). */
function shellStatus(cmd: string, args: string[], env: Record<string, string>): { code: number | null; output: string } {
  const r = spawnSync(cmd, args, { cwd: REPO, encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...stackEnv(), ...env } });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}
function shell(cmd: string, args: string[], env: Record<string, string>): string {
  const r = shellStatus(cmd, args, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.output}`);
  return r.output;
}

const connectorPath = () => `/connectors/${cap.connector}`;

describe('capture survives connector operations', () => {
  it('a stored offset in the middle of a transaction, its commit LSN behind the slot and its change LSN ahead: resumes without skipping', async () => {
    await writeSome();
    await expectExact('before the stop');
    const base = await must('GET', `${connectorPath()}/config`);
    await must('PUT', `${connectorPath()}/stop`);
    await waitState(cap.connector, 'STOPPED');
    const before = (await must('GET', `${connectorPath()}/offsets`)).offsets[0];
    const lastCommit = BigInt(before.offset.lsn_commit);

    // While stopped: transaction T (ids r1..r10) with a small transaction S committing in its middle.
    const t = await source().connect();
    const s = await source().connect();
    let txId: string;
    let slotTarget: bigint;
    const r = nextId;
    nextId += 11;
    try {
      await t.query('BEGIN');
      await t.query(`INSERT INTO ${table} (id, v) SELECT g, 0 FROM generate_series($1::int, $2::int) g`, [r, r + 4]);
      await s.query(`INSERT INTO ${table} (id, v) VALUES ($1, 0)`, [r + 10]);
      slotTarget = await currentLsn(); // after S's commit, before T's second half
      await t.query(`INSERT INTO ${table} (id, v) SELECT g, 0 FROM generate_series($1::int, $2::int) g`, [r + 5, r + 9]);
      txId = (await t.query('SELECT txid_current()::text AS x')).rows[0].x;
      await t.query('COMMIT');
      changes += 11;
    } finally {
      t.release();
      s.release();
    }
    // Everything delivered, with a slot that does not move by itself (manual flush), so that it
    // can be placed between T's pieces below, as the driver's keepalive flush placed it.
    await must('PUT', `${connectorPath()}/config`, { ...base, 'lsn.flush.mode': 'manual' });
    await must('PUT', `${connectorPath()}/resume`);
    await waitRunning(cap.connector);
    await expectExact('S and T delivered');
    const r8 = BigInt((await warehouse().query(`SELECT source_lsn::text AS l FROM "${table}_fact" WHERE id = $1`, [r + 7])).rows[0].l);
    await must('PUT', `${connectorPath()}/stop`);
    await waitState(cap.connector, 'STOPPED');

    // The failing state: slot confirmed at S's commit; offset {lsn_commit behind it, lsn at r8 ahead of it}.
    await waitFor('the slot released by the stopped task', async () => (await slot(cap.slot))?.active === false, 30_000, 200);
    await sourceAdmin().query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [cap.slot, lsnText(slotTarget)]);
    const sl = (await slot(cap.slot))!;
    expect(sl.confirmedFlushLsn).toBe(slotTarget);
    expect(lastCommit < sl.confirmedFlushLsn && sl.confirmedFlushLsn < r8).toBe(true);
    const now = (await must('GET', `${connectorPath()}/offsets`)).offsets[0];
    const offset = { ...now.offset, lsn_commit: Number(lastCommit), lsn: Number(r8), lsn_proc: Number(r8), txId: Number(txId), messageType: 'INSERT' };
    await must('PATCH', `${connectorPath()}/offsets`, { offsets: [{ partition: now.partition, offset }] });
    console.log(`offset set to {lsn_commit: ${lsnText(lastCommit)}, lsn: ${lsnText(r8)}}, slot ${cap.slot} confirmed at ${lsnText(sl.confirmedFlushLsn)}`);

    // Changes made while stopped, after the offset: all must arrive.
    await writeSome();
    await must('PUT', `${connectorPath()}/config`, base);
    const t0 = Date.now();
    await must('PUT', `${connectorPath()}/resume`);
    const ms = await waitRunning(cap.connector, t0);
    await writeSome();
    await expectExact('after resuming from a mid-transaction offset');
    figures.push(`resume from a mid-transaction offset behind the slot: RUNNING after ${ms} ms; exact after ${Date.now() - t0} ms`);
    expect((await status(cap.connector))!.tasks).toEqual(['RUNNING']);
  });

  it('REST restart of the connector', () => operation('POST restart', async () => { await must('POST', `${connectorPath()}/restart`); }));

  it('REST restart with its tasks', () => operation('POST restart?includeTasks=true', async () => {
    await must('POST', `${connectorPath()}/restart?includeTasks=true`);
  }));

  it('pause and resume', () => operation('pause/resume', async () => {
    await must('PUT', `${connectorPath()}/pause`);
    await waitState(cap.connector, 'PAUSED');
    await writeSome();
    await must('PUT', `${connectorPath()}/resume`);
  }));

  it('stop and resume', () => operation('stop/resume', async () => {
    await must('PUT', `${connectorPath()}/stop`);
    await waitState(cap.connector, 'STOPPED');
    await writeSome();
    await must('PUT', `${connectorPath()}/resume`);
  }));

  it('a config change', () => operation('PUT config (poll.interval.ms changed)', async () => {
    const config = await must('GET', `${connectorPath()}/config`);
    await must('PUT', `${connectorPath()}/config`, { ...config, 'poll.interval.ms': config['poll.interval.ms'] === '100' ? '50' : '100' });
  }));

  it('delete and re-create under the same name', () => operation('DELETE + PUT config', async () => {
    const config = await must('GET', `${connectorPath()}/config`);
    await must('DELETE', connectorPath());
    await waitFor('connector gone', async () => (await rest('GET', connectorPath())).status === 404, 30_000, 200);
    await writeSome();
    await must('PUT', `${connectorPath()}/config`, config);
  }));

  it('kill -9 of the Connect worker in the middle of a large transaction', async () => {
    await expectExact('before the large transaction');
    const factsBefore = (await warehouse().query(`SELECT count(*)::int AS n FROM "${table}_fact"`)).rows[0].n;
    const first = nextId;
    const n = 100_000;
    nextId += n;
    const c = await source().connect();
    let txId: number;
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} (id, v, note) SELECT g, 0, repeat('x', 100) FROM generate_series($1::int, $2::int) g`, [first, first + n - 1]);
      txId = Number((await c.query('SELECT txid_current()::text AS x')).rows[0].x);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    changes += n;
    // Connect has stored an offset at a change inside the transaction: the worker dies mid-transaction.
    // (Its lsn_commit is the last commit before it, which may lie after some of its changes: small
    // transactions that committed while it ran are streamed before it.)
    const stored = await waitFor('an offset stored in the middle of the large transaction', async () => {
      const o = (await must('GET', `${connectorPath()}/offsets`)).offsets[0]?.offset;
      return o && Number(o.txId) === txId && o.messageType === 'INSERT' ? o : null;
    }, 120_000, 100);
    const landed = (await warehouse().query(`SELECT count(*)::int AS n FROM "${table}_fact"`)).rows[0].n - factsBefore;
    const pid = Number(fs.readFileSync(path.join(stackEnv().DATA_DIR, 'run', 'connect.pid'), 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    console.log(`killed Kafka Connect (pid ${pid}) with the offset {lsn_commit: ${lsnText(BigInt(stored.lsn_commit ?? 0))}, lsn: ${lsnText(BigInt(stored.lsn))}} stored and ${landed} of ${n} rows of the transaction in the warehouse`);
    await writeSome();
    run('bash', ['infra/connect.sh', 'start'], 180_000);
    const ms = await waitRunning(cap.connector, t0, 120_000);
    await writeSome();
    await expectExact('after kill -9 of Kafka Connect', 300_000);
    figures.push(`kill -9 of Connect mid-transaction (${landed}/${n} landed), restart: RUNNING after ${ms} ms; exact after ${Date.now() - t0} ms`);
  }, 600_000);

  it('make up keeps a config changed through REST; make connector-apply shows the difference and applies the file', async () => {
    // The file make up would register for this connector: its config as created.
    const file = path.join(REPO, 'connectors', `${cap.connector}.json`);
    const created = await must('GET', `${connectorPath()}/config`);
    delete created.name;
    fs.writeFileSync(file, `${JSON.stringify(created, null, 2)}\n`);
    try {
      // A table added through REST, as a user does.
      await sourceAdmin().query(`GRANT SELECT ON ${busy} TO debezium`);
      await sourceAdmin().query(`ALTER PUBLICATION ${cap.publication} ADD TABLE ${busy}`);
      const extended = { ...created, 'table.include.list': `${created['table.include.list']},public.${busy}` };
      await must('PUT', `${connectorPath()}/config`, extended);
      await waitRunning(cap.connector);
      const env = { CONNECTOR_NAME: cap.connector };
      const up = shell('bash', ['infra/connect.sh', 'register'], env);
      expect(up).toMatch(/differs from connectors\/.*\.json in 1 key\(s\); kept .*make connector-apply/);
      expect((await must('GET', `${connectorPath()}/config`))['table.include.list']).toBe(extended['table.include.list']);
      await writeSome();
      await expectExact('after make up');

      const refused = shellStatus('bash', ['infra/connect.sh', 'apply'], env);
      expect(refused.code).not.toBe(0);
      expect(refused.output).toContain(`~ table.include.list: "${extended['table.include.list']}" -> "${created['table.include.list']}"`);
      expect((await must('GET', `${connectorPath()}/config`))['table.include.list']).toBe(extended['table.include.list']);

      const applied = shell('bash', ['infra/connect.sh', 'apply'], { ...env, YES: '1' });
      expect(applied).toMatch(/applied/);
      expect((await must('GET', `${connectorPath()}/config`))['table.include.list']).toBe(created['table.include.list']);
      await waitRunning(cap.connector);
      await writeSome();
      await expectExact('after make connector-apply');
    } finally {
      fs.rmSync(file, { force: true });
      await sourceAdmin().query(`ALTER PUBLICATION ${cap.publication} DROP TABLE ${busy}`).catch(() => undefined);
    }
  });

  it('restart after the captured table idled while other tables were busy', async () => {
    await expectExact('before the idle period');
    const start = await currentLsn();
    // The captured table idles; another table writes WAL for a while.
    for (let i = 0; i < 20; i++) {
      await source().query(`INSERT INTO ${busy} (pad) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 5000) g`);
      await source().query(`DELETE FROM ${busy}`);
      await new Promise((res) => setTimeout(res, 500));
    }
    const end = await currentLsn();
    console.log(`WAL written by other tables while ${table} idled: ${end - start} bytes`);
    // The heartbeat moved the slot over it: retained WAL stays bounded.
    await waitFor('the slot confirmed past the busy period', async () => (await slot(cap.slot))!.confirmedFlushLsn > start, 30_000, 500);
    await operation('restart after an idle period', async () => { await must('POST', `${connectorPath()}/restart?includeTasks=true`); });
  });
});
