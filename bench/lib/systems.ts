// The systems under test, each loading the same source changes into its own warehouse
// database, and how each records when a row version arrived:
//  - ours:   a second processor instance (own consumer group) into database bench_ours;
//            a statement trigger on orders_latest notes the time of the batch's last statement
//            per transaction; orders_fact rows find it through their xmin.
//  - jdbc:   the Debezium JDBC sink connector in the stack's Kafka Connect, upsert mode, into
//            database bench_jdbc; a deferred (commit-time) row trigger logs each row version.
//  - jdbcTuned: the same sink as a second connector with tuned settings, into bench_jdbc_tuned.
//  - native: a publication on the source and a subscription in database bench_native; the same
//            deferred row trigger, enabled ALWAYS so that the apply worker fires it.
// Every row version written by the load generator carries its source commit time in updated_at.
import { ChildProcess, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import type { Client } from 'pg';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { kafkaClient } from '../../processor/src/kafka-options';
import { threadsNamed, type Group, type Member } from './proc';
import { ConnectRest, connect, lit, log, sleep, urlParts, waitFor, withDb } from './util';

export const TOPIC = 'dbserver1.public.orders';
export type SystemKey = 'ours' | 'oursEvent' | 'jdbc' | 'jdbcTuned' | 'native';
/** Debezium's transaction metadata of the stack's connector (whole-transaction apply needs it). */
export const TX_TOPIC = 'dbserver1.transaction';

export interface Env {
  repo: string;
  sourceAdminUrl: string;
  warehouseAdminUrl: string;
  /** The processor role's warehouse URL (its database is replaced by bench_ours). */
  processorUrl: string;
  brokers: string[];
  connectUrl: string;
  registryUrl: string;
  apicurioUrl: string;
  dataDir: string;
  /** Kafka Connect's pid, when it runs on this machine (for its threads' CPU time). */
  connectPid: number | null;
}

/** [from, to]: the source commit times (updated_at) of the row versions of one run. */
export interface Window {
  from: Date;
  to: Date;
}

export interface Arrivals {
  /** Freshness of each row version that arrived (ms), ascending. */
  ms: Float64Array;
  /** Arrival instants (ms since epoch), ascending. */
  at: Float64Array;
}

export interface System {
  key: SystemKey;
  label: string;
  setup(): Promise<void>;
  /** Installs what needs the tables the system creates itself (after the warm-up). */
  instrument(): Promise<void>;
  /** Throws when the system has failed for good (a connector task FAILED); optional. */
  check?(): Promise<void>;
  pause(): Promise<void>;
  resume(opts?: { profileDir?: string }): Promise<void>;
  /** Row versions of the window that have arrived. */
  count(w: Window): Promise<number>;
  arrivals(w: Window): Promise<Arrivals>;
  /** CPU/RSS groups while running alongside the others (client + its warehouse backends). */
  groups(): Group[];
  teardown(): Promise<void>;
}

const ARRIVALS_SQL = `
CREATE SCHEMA bench;
-- One row per row version written into the target table, logged at commit (deferred trigger).
CREATE UNLOGGED TABLE bench.arrivals (order_id bigint, updated_at timestamptz, arrived_at timestamptz NOT NULL);
CREATE FUNCTION bench.note_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  INSERT INTO bench.arrivals VALUES (NEW.order_id, NEW.updated_at, clock_timestamp());
  RETURN NULL;
END $$;`;

const ARRIVALS_TRIGGER = (table: string) =>
  `CREATE CONSTRAINT TRIGGER bench_arrival AFTER INSERT OR UPDATE ON ${table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench.note_row()`;

async function arrivalsFrom(c: Client, sql: string, w: Window): Promise<Arrivals> {
  const r = await c.query({ text: sql, values: [w.from, w.to], rowMode: 'array' });
  const ms = new Float64Array(r.rows.length);
  const at = new Float64Array(r.rows.length);
  r.rows.forEach((row, i) => {
    ms[i] = Number(row[0]);
    at[i] = Number(row[1]);
  });
  ms.sort();
  at.sort();
  return { ms, at };
}

async function backends(c: Client, db: string, appLike = '%'): Promise<Member[]> {
  const r = await c.query('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE $2 AND pid <> pg_backend_pid()', [db, appLike]);
  return r.rows.map((x) => ({ pid: x.pid, rss: 'anon' as const }));
}

async function recreateDatabase(admin: Client, db: string, owner?: string): Promise<void> {
  await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${db}${owner ? ` OWNER ${owner}` : ''}`);
}

export async function endOffsets(admin: Admin): Promise<Map<number, bigint>> {
  const o = await admin.fetchTopicOffsets(TOPIC);
  return new Map(o.map((p) => [p.partition, BigInt(p.high)]));
}

/** Points a consumer group (without members) at the end of the topic. */
async function groupToEnd(admin: Admin, groupId: string): Promise<Map<number, bigint>> {
  const ends = await endOffsets(admin);
  for (let i = 0; ; i++) {
    try {
      await admin.setOffsets({ groupId, topic: TOPIC, partitions: [...ends].map(([partition, o]) => ({ partition, offset: o.toString() })) });
      return ends;
    } catch (e) {
      if (i >= 60) throw new Error(`cannot move consumer group ${groupId} to the end of ${TOPIC}: ${(e as Error).message}`);
      await sleep(1000); // members of a deleted connector still leaving the group
    }
  }
}

export function kafkaAdmin(brokers: string[]): Admin {
  return kafkaClient({ clientId: 'cdc-bench', brokers, logLevel: logLevel.NOTHING }).admin();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- ours

export class Ours implements System {
  readonly key: 'ours' | 'oursEvent';
  readonly label: string;
  readonly db: string;
  readonly group: string;
  /** How a row version's arrival is found: the warehouse transaction that made it visible in
   *  orders_latest. APPLY_MODE=event: the batch that appended it (its xmin) wrote _latest too.
   *  transaction (the default): the first watermark step whose consistent_through reached the
   *  version's commit time (that step merged it into _latest and showed it in _history). */
  readonly arrivalJoin: string;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private port = 0;
  private c!: Client;
  readonly logFile: string;

  constructor(
    private readonly env: Env,
    private readonly whAdmin: Client,
    private readonly kafka: Admin,
    readonly mode: 'transaction' | 'event' = 'transaction',
  ) {
    const event = mode === 'event';
    this.key = event ? 'oursEvent' : 'ours';
    this.label = event ? 'ours, APPLY_MODE=event (per batch, not whole transactions)' : 'ours (TypeScript processor)';
    this.db = event ? 'bench_ours_event' : 'bench_ours';
    this.group = `cdc-bench-${event ? 'event-' : ''}${Date.now()}`;
    this.arrivalJoin = event
      ? 'JOIN bench.tx_arrival t ON t.xid = f.xmin::text::bigint'
      : 'JOIN LATERAL (SELECT v.at FROM bench.visible v WHERE v.through >= f.source_ts ORDER BY v.through LIMIT 1) t ON true';
    this.logFile = path.join(env.dataDir, 'bench', `processor${event ? '-event' : ''}.log`);
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Writer lanes the processor runs with (its configuration, as the child process gets it). */
  lanes(): number {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { loadConfig } = require(path.join(this.env.repo, 'dist/processor/src/config.js'));
      const { config } = loadConfig({ ...process.env, WAREHOUSE_DATABASE_URL: withDb(this.env.processorUrl, this.db) });
      return Number(config.batch?.lanes ?? config.writer?.lanes ?? 1) || 1;
    } catch {
      return 1;
    }
  }

  /** Admin connection to bench_ours. */
  get client(): Client {
    return this.c;
  }

  async setup(): Promise<void> {
    await recreateDatabase(this.whAdmin, this.db);
    this.c = await connect(withDb(this.env.warehouseAdminUrl, this.db));
    const dir = path.join(this.env.repo, 'warehouse-migrations');
    for (const f of fs.readdirSync(dir).filter((x) => /^\d+_.*\.sql$/.test(x)).sort()) {
      await this.c.query(`BEGIN; ${fs.readFileSync(path.join(dir, f), 'utf8')}; COMMIT;`);
    }
    await this.c.query(`
      CREATE SCHEMA bench;
      -- Per warehouse transaction: when its last orders_latest statement ended (just before COMMIT).
      CREATE UNLOGGED TABLE bench.tx_arrival (xid bigint PRIMARY KEY, at timestamptz NOT NULL);
      CREATE FUNCTION bench.note_tx() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
      BEGIN
        INSERT INTO bench.tx_arrival VALUES (txid_current() % 4294967296, clock_timestamp())
        ON CONFLICT (xid) DO UPDATE SET at = EXCLUDED.at;
        RETURN NULL;
      END $$;
      -- Per watermark step: how far it reached and when (just before its COMMIT).
      CREATE UNLOGGED TABLE bench.visible (through timestamptz PRIMARY KEY, at timestamptz NOT NULL);
      CREATE FUNCTION bench.note_visible() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
      BEGIN
        INSERT INTO bench.visible SELECT max(consistent_through), clock_timestamp() FROM moved WHERE consistent_through IS NOT NULL HAVING max(consistent_through) IS NOT NULL
        ON CONFLICT (through) DO NOTHING;
        RETURN NULL;
      END $$;
      CREATE TRIGGER bench_visible AFTER UPDATE ON cdc.consistency REFERENCING NEW TABLE AS moved FOR EACH STATEMENT EXECUTE FUNCTION bench.note_visible();`);
    // Start at the end of the topic: the warehouse's offsets (the processor's truth) and Kafka's.
    const ends = await groupToEnd(this.kafka, this.group);
    for (const [p, o] of ends) {
      await this.c.query('INSERT INTO cdc.offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4)', [this.group, TOPIC, p, o.toString()]);
    }
    // The END records from here on (earlier ones name transactions whose changes it never reads).
    for (const p of await this.kafka.fetchTopicOffsets(TX_TOPIC)) {
      await this.c.query('INSERT INTO cdc.offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4)', [this.group, TX_TOPIC, p.partition, p.high]);
    }
    await this.resume();
  }

  async instrument(): Promise<void> {
    const ok = await waitFor(async () => (await this.c.query("SELECT to_regclass('public.orders_latest') IS NOT NULL AS ok")).rows[0].ok, 60_000);
    if (!ok) throw new Error(`the processor did not create orders_latest in ${this.db}; see ${this.logFile}`);
    await this.c.query('CREATE TRIGGER bench_arrival AFTER INSERT OR UPDATE ON public.orders_latest FOR EACH STATEMENT EXECUTE FUNCTION bench.note_tx()');
  }

  async resume(opts: { profileDir?: string } = {}): Promise<void> {
    if (this.child) return;
    this.port = await freePort();
    fs.mkdirSync(path.dirname(this.logFile), { recursive: true });
    const out = fs.openSync(this.logFile, 'a');
    const args = [...(opts.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`, '--cpu-prof-name=processor.cpuprofile'] : []),
      // BENCH_PROCESSOR_MAIN: another build of the processor to compare (an experiment), else this one.
      process.env.BENCH_PROCESSOR_MAIN || path.join(this.env.repo, 'dist/processor/src/main.js')];
    const child = spawn(process.execPath, args, {
      cwd: this.env.repo,
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        WAREHOUSE_DATABASE_URL: withDb(this.env.processorUrl, this.db),
        KAFKA_BOOTSTRAP_SERVERS: this.env.brokers.join(','),
        SCHEMA_REGISTRY_URL: this.env.registryUrl,
        PROCESSOR_GROUP_ID: this.group,
        PROCESSOR_TOPICS: `${TOPIC},${TX_TOPIC}`,
        CONNECT_URL: '',
        APPLY_MODE: this.mode,
        PROCESSOR_CLIENT_ID: 'cdc-bench-processor',
        PROCESSOR_PORT: String(this.port),
        PROCESSOR_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
    });
    fs.closeSync(out);
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    const healthy = await waitFor(async () => {
      if (!this.child) throw new Error(`the benchmark's processor exited at start; see ${this.logFile}`);
      try {
        return (await fetch(`http://127.0.0.1:${this.port}/health`, { signal: AbortSignal.timeout(2000) })).ok;
      } catch {
        return false;
      }
    }, 60_000, 200);
    if (!healthy) throw new Error(`the benchmark's processor is not healthy after 60 s; see ${this.logFile}`);
  }

  /** The processor's own batch figures since it started (GET /metrics): batches, messages, seconds writing. */
  async batchStats(): Promise<{ batches: number; messages: number; writeSec: number } | null> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      const v = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
      return { batches: v('cdc_batch_duration_seconds_count'), messages: v('cdc_batch_events_sum'), writeSec: v('cdc_batch_duration_seconds_sum') };
    } catch {
      return null;
    }
  }

  async pause(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), sleep(60_000).then(() => false)]);
    if (!done) {
      child.kill('SIGKILL');
      await this.exited;
    }
    this.child = null;
  }

  private get windowSql(): string {
    return `FROM public.orders_fact f ${this.arrivalJoin} WHERE f.op IN ('c', 'u') AND f.updated_at BETWEEN $1 AND $2`;
  }

  async count(w: Window): Promise<number> {
    // arrivalJoin's per-row search of bench.visible, counted: a version has arrived when any step
    // reached its commit time, i.e. the furthest one did (a third of the join's cost).
    const sql = this.mode === 'event'
      ? `SELECT count(*) AS n ${this.windowSql}`
      : "SELECT count(*) AS n FROM public.orders_fact f WHERE f.op IN ('c', 'u') AND f.updated_at BETWEEN $1 AND $2 AND f.source_ts <= (SELECT max(through) FROM bench.visible)";
    return Number((await this.c.query(sql, [w.from, w.to])).rows[0].n);
  }

  arrivals(w: Window): Promise<Arrivals> {
    return arrivalsFrom(this.c, `SELECT extract(epoch FROM t.at - f.updated_at) * 1000, extract(epoch FROM t.at) * 1000 ${this.windowSql}`, w);
  }

  /** Events the processor has not stored yet (its offsets in the warehouse against the topic's end). */
  async lag(): Promise<bigint> {
    const ends = await endOffsets(this.kafka);
    // Of the change topic only: the group also stores offsets of the transaction topic, whose
    // partition 0 would otherwise stand in for the change topic's (a negative backlog).
    const r = await this.c.query('SELECT partition, next_offset::text AS n FROM cdc.offsets WHERE consumer_group = $1 AND topic = $2', [this.group, TOPIC]);
    const stored = new Map(r.rows.map((x) => [x.partition as number, BigInt(x.n)]));
    let lag = 0n;
    for (const [p, end] of ends) lag += end - (stored.get(p) ?? 0n);
    return lag;
  }

  groups(): Group[] {
    const node = (): Member[] => (this.child?.pid ? [{ pid: this.child.pid, rss: 'all' }] : []);
    const pg = () => backends(this.whAdmin, this.db, 'cdc-processor%');
    return [
      { name: this.key, members: async () => [...node(), ...(await pg())] },
      { name: `${this.key}:client`, members: node },
      { name: `${this.key}:pg`, members: pg },
    ];
  }

  async teardown(): Promise<void> {
    await this.pause();
    await this.c?.end().catch(() => undefined);
    await this.kafka.deleteGroups([this.group]).catch(() => undefined); // one per run: leave none behind
  }
}

// ---------------------------------------------------------------- Debezium JDBC sink

/** One Debezium JDBC sink connector: the default configuration, or the tuned one beside it. */
export interface SinkVariant {
  key: 'jdbc' | 'jdbcTuned';
  label: string;
  /** Connector name; its first characters name the task thread (15 characters kept by the kernel), so they differ per variant. */
  name: string;
  db: string;
  role: string;
  /** Settings laid over bench/connectors/jdbc-sink.json (the tuned sink's). */
  overlay?: string;
}

export const DEFAULT_SINK: SinkVariant = { key: 'jdbc', label: 'Debezium JDBC sink', name: 'jdbc-sink', db: 'bench_jdbc', role: 'bench_jdbc' };
export const TUNED_SINK: SinkVariant = {
  key: 'jdbcTuned',
  label: 'Debezium JDBC sink, tuned',
  name: 'tuned-jdbc-sink',
  db: 'bench_jdbc_tuned',
  role: 'bench_jdbc_tuned',
  overlay: 'bench/connectors/jdbc-sink-tuned.json',
};

export class JdbcSink implements System {
  readonly key: 'jdbc' | 'jdbcTuned';
  readonly label: string;
  readonly db: string;
  readonly role: string;
  readonly name: string;
  private c!: Client;
  private readonly rest: ConnectRest;
  /** tasks.max as sent (the tuned sink: one task per partition of the topic). */
  tasks = 1;

  constructor(
    private readonly env: Env,
    private readonly whAdmin: Client,
    private readonly kafka: Admin,
    private readonly variant: SinkVariant = DEFAULT_SINK,
  ) {
    this.rest = new ConnectRest(env.connectUrl);
    this.key = variant.key;
    this.label = variant.label;
    this.db = variant.db;
    this.role = variant.role;
    this.name = variant.name;
  }

  /** The config sent to Connect: bench/connectors/jdbc-sink.json (and the variant's overlay) with ${bench:...} filled in. */
  private payload(password: string, partitions: number): Record<string, string> {
    const wh = urlParts(this.env.warehouseAdminUrl);
    const values: Record<string, string> = {
      JDBC_URL: `jdbc:postgresql://${wh.host}:${wh.port}/${this.db}`,
      JDBC_USER: this.role,
      JDBC_PASSWORD: password,
      TOPIC_PARTITIONS: String(partitions),
    };
    const read = (f: string) => JSON.parse(fs.readFileSync(path.join(this.env.repo, f), 'utf8')) as Record<string, string>;
    const cfg = { ...read('bench/connectors/jdbc-sink.json'), ...(this.variant.overlay ? read(this.variant.overlay) : {}) };
    // Comment keys ("//...") document the overlay; Connect would reject them.
    for (const k of Object.keys(cfg)) if (k.startsWith('//')) delete cfg[k];
    for (const k of Object.keys(cfg)) {
      cfg[k] = String(cfg[k]).replace(/\$\{bench:([A-Z_]+)\}/g, (m, n) => values[n] ?? m);
      // A worker elsewhere cannot resolve our ${env:...} names.
      if (this.env.connectPid === null) cfg[k] = cfg[k].replace('${env:APICURIO_REGISTRY_URL}', this.env.apicurioUrl);
    }
    // A registry behind authentication (SECURITY=on): the converters use the writer Connect's worker knows.
    if (process.env.REGISTRY_WRITER_USERNAME) {
      for (const k of Object.keys(cfg).filter((k) => k.endsWith('converter.apicurio.registry.url'))) {
        const side = k.slice(0, -'apicurio.registry.url'.length);
        cfg[`${side}apicurio.registry.auth.username`] = '${env:REGISTRY_WRITER_USERNAME}';
        cfg[`${side}apicurio.registry.auth.password`] = '${env:REGISTRY_WRITER_PASSWORD}';
      }
    }
    return cfg;
  }

  async setup(): Promise<void> {
    const plugins = await this.rest.must('GET', '/connector-plugins');
    if (!plugins.some((p: { class: string }) => p.class === 'io.debezium.connector.jdbc.JdbcSinkConnector')) {
      throw new Error('Kafka Connect has no Debezium JDBC sink plugin: bench/run.sh installs it and restarts Connect');
    }
    await this.rest.call('DELETE', `/connectors/${this.name}`);
    await this.whAdmin.query(`DROP DATABASE IF EXISTS ${this.db} WITH (FORCE)`);
    // A role of its own, with a new random password each run, that can reach only its database.
    const password = crypto.randomBytes(18).toString('base64url');
    await this.whAdmin.query(`DROP ROLE IF EXISTS ${this.role}`);
    await this.whAdmin.query(`CREATE ROLE ${this.role} LOGIN PASSWORD ${lit(password)}`);
    await recreateDatabase(this.whAdmin, this.db, this.role);
    this.c = await connect(withDb(this.env.warehouseAdminUrl, this.db));
    await this.c.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT CREATE ON SCHEMA public TO ${this.role}; ${ARRIVALS_SQL}`);
    await groupToEnd(this.kafka, `connect-${this.name}`);
    const meta = await this.kafka.fetchTopicMetadata({ topics: [TOPIC] });
    const partitions = meta.topics[0]?.partitions.length ?? 1;
    const cfg = this.payload(password, partitions);
    this.tasks = Number(cfg['tasks.max']) || 1;
    await this.rest.must('PUT', `/connectors/${this.name}/config`, cfg);
    await this.rest.waitState(this.name, 'RUNNING');
  }

  /** Throws when a task of the connector FAILED (with the causes from its trace). */
  async check(): Promise<void> {
    const r = await this.rest.call('GET', `/connectors/${this.name}/status`);
    if (r.status !== 200) return;
    const failed = r.json.tasks.filter((t: { state: string }) => t.state === 'FAILED');
    if (failed.length === 0) return;
    const trace = String(failed[0].trace ?? '');
    // The database's own message says most ("ERROR: ..."); else the last cause.
    const cause = /ERROR: [^\n]*/.exec(trace)?.[0] ?? trace.split('\n').filter((l) => l.startsWith('Caused by')).pop() ?? trace.split('\n')[0];
    throw new Error(`${this.label} (connector ${this.name}) FAILED: ${cause.slice(0, 400)}`);
  }

  async instrument(): Promise<void> {
    const ok = await waitFor(async () => {
      await this.check();
      return (await this.c.query("SELECT to_regclass('public.orders') IS NOT NULL AS ok")).rows[0].ok;
    }, 60_000);
    if (!ok) throw new Error(`the JDBC sink did not create its table in ${this.db}`);
    await this.c.query(ARRIVALS_TRIGGER('public.orders'));
  }

  async pause(): Promise<void> {
    await this.rest.must('PUT', `/connectors/${this.name}/pause`);
    await this.rest.waitState(this.name, 'PAUSED');
  }

  async resume(): Promise<void> {
    await this.rest.must('PUT', `/connectors/${this.name}/resume`);
    await this.rest.waitState(this.name, 'RUNNING');
  }

  async count(w: Window): Promise<number> {
    return Number((await this.c.query('SELECT count(*) AS n FROM bench.arrivals WHERE updated_at BETWEEN $1 AND $2', [w.from, w.to])).rows[0].n);
  }

  arrivals(w: Window): Promise<Arrivals> {
    return arrivalsFrom(this.c, 'SELECT extract(epoch FROM arrived_at - updated_at) * 1000, extract(epoch FROM arrived_at) * 1000 FROM bench.arrivals WHERE updated_at BETWEEN $1 AND $2', w);
  }

  groups(): Group[] {
    const pid = this.env.connectPid;
    // The sink's task thread: Kafka consumer, Avro conversion, JDBC writes. The JVM's shared
    // threads (GC, JIT) are only in "jdbc+connect", the whole worker: the sink's cost while the
    // source connector idles (the drain).
    const task = (): Member[] => (pid ? threadsNamed(pid, `task-thread-${this.name}`) : []);
    // The sink's own connections (pgjdbc's default application name), not the benchmark's.
    const pg = () => backends(this.whAdmin, this.db, 'PostgreSQL JDBC%');
    const k = this.key;
    return [
      { name: k, members: async () => [...task(), ...(await pg())] },
      { name: `${k}:client`, members: task },
      { name: `${k}:pg`, members: pg },
      { name: `${k}+connect`, members: async () => [...(pid ? [{ pid, rss: 'all' as const }] : []), ...(await pg())] },
      { name: `${k}+connect:client`, members: () => (pid ? [{ pid, rss: 'all' as const }] : []) },
    ];
  }

  async teardown(): Promise<void> {
    await this.rest.call('DELETE', `/connectors/${this.name}`).catch(() => undefined);
    await this.c?.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- native logical replication

export class Native implements System {
  readonly key = 'native' as const;
  readonly label = 'PostgreSQL logical replication';
  readonly db = 'bench_native';
  readonly pub = 'bench_pub';
  readonly sub = 'bench_sub';
  private c!: Client;

  constructor(
    private readonly env: Env,
    private readonly whAdmin: Client,
    private readonly srcAdmin: Client,
  ) {}

  /** Drops a subscription left by an earlier run, and its slot on the source. */
  private async dropLeftovers(): Promise<void> {
    const exists = (await this.whAdmin.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.db])).rowCount;
    if (exists) {
      const c = await connect(withDb(this.env.warehouseAdminUrl, this.db));
      try {
        if ((await c.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [this.sub])).rowCount) {
          await c.query(`ALTER SUBSCRIPTION ${this.sub} DISABLE`);
          await c.query(`ALTER SUBSCRIPTION ${this.sub} SET (slot_name = NONE)`);
          await c.query(`DROP SUBSCRIPTION ${this.sub}`);
        }
      } finally {
        await c.end();
      }
    }
    await waitFor(async () => {
      const r = await this.srcAdmin.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [this.sub]);
      if (r.rowCount === 0) return true;
      if (!r.rows[0].active) await this.srcAdmin.query('SELECT pg_drop_replication_slot($1)', [this.sub]);
      return false;
    }, 30_000, 500);
    await this.srcAdmin.query(`DROP PUBLICATION IF EXISTS ${this.pub}`);
  }

  async setup(): Promise<void> {
    await this.dropLeftovers();
    await this.srcAdmin.query(`CREATE PUBLICATION ${this.pub} FOR TABLE public.orders`);
    // The target table: the source's columns and primary key, as they are now.
    const cols = await this.srcAdmin.query(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull
       FROM pg_attribute a WHERE a.attrelid = 'public.orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    );
    const pk = await this.srcAdmin.query(
      `SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
       WHERE i.indrelid = 'public.orders'::regclass AND i.indisprimary`,
    );
    const q = (n: string) => `"${n.replace(/"/g, '""')}"`;
    await recreateDatabase(this.whAdmin, this.db);
    this.c = await connect(withDb(this.env.warehouseAdminUrl, this.db));
    await this.c.query(
      `CREATE TABLE public.orders (${cols.rows.map((r) => `${q(r.name)} ${r.type}${r.notnull ? ' NOT NULL' : ''}`).join(', ')}, ` +
        `PRIMARY KEY (${pk.rows.map((r) => q(r.name)).join(', ')}))`,
    );
    await this.c.query(ARRIVALS_SQL);
    const s = urlParts(this.env.sourceAdminUrl);
    const conninfo = `host=${s.host} port=${s.port} dbname=${s.db} user=${s.user} password=${s.password} application_name=${this.sub}`;
    await this.c.query(`CREATE SUBSCRIPTION ${this.sub} CONNECTION ${lit(conninfo)} PUBLICATION ${this.pub} WITH (copy_data = true)`);
    // The initial copy of the table, so that updates and deletes find their rows.
    const synced = await waitFor(async () => {
      const r = await this.c.query("SELECT count(*) FILTER (WHERE srsubstate <> 'r') AS pending, count(*) AS n FROM pg_subscription_rel");
      return Number(r.rows[0].n) > 0 && Number(r.rows[0].pending) === 0;
    }, 300_000, 500);
    if (!synced) throw new Error('the subscription did not finish its initial copy of public.orders within 300 s');
    // After the copy (its rows are not timed). The apply worker runs with
    // session_replication_role = replica: only ALWAYS triggers fire there.
    await this.c.query(ARRIVALS_TRIGGER('public.orders'));
    await this.c.query('ALTER TABLE public.orders ENABLE ALWAYS TRIGGER bench_arrival');
  }

  async instrument(): Promise<void> {
    // The trigger exists since the end of the initial copy.
  }

  async pause(): Promise<void> {
    await this.c.query(`ALTER SUBSCRIPTION ${this.sub} DISABLE`);
    await waitFor(async () => (await this.c.query('SELECT count(pid) AS n FROM pg_stat_subscription WHERE subname = $1', [this.sub])).rows[0].n === '0', 30_000);
  }

  async resume(): Promise<void> {
    await this.c.query(`ALTER SUBSCRIPTION ${this.sub} ENABLE`);
  }

  async count(w: Window): Promise<number> {
    return Number((await this.c.query('SELECT count(*) AS n FROM bench.arrivals WHERE updated_at BETWEEN $1 AND $2', [w.from, w.to])).rows[0].n);
  }

  arrivals(w: Window): Promise<Arrivals> {
    return arrivalsFrom(this.c, 'SELECT extract(epoch FROM arrived_at - updated_at) * 1000, extract(epoch FROM arrived_at) * 1000 FROM bench.arrivals WHERE updated_at BETWEEN $1 AND $2', w);
  }

  groups(): Group[] {
    // The walsender that decodes the source's WAL for the subscription, and the apply worker.
    const walsender = async () =>
      (await this.srcAdmin.query('SELECT pid FROM pg_stat_replication WHERE application_name = $1', [this.sub])).rows.map((r) => ({ pid: r.pid as number, rss: 'anon' as const }));
    const apply = async () =>
      (await this.whAdmin.query('SELECT pid FROM pg_stat_subscription WHERE subname = $1 AND pid IS NOT NULL', [this.sub])).rows.map((r) => ({ pid: r.pid as number, rss: 'anon' as const }));
    return [
      { name: 'native', members: async () => [...(await walsender()), ...(await apply())] },
      { name: 'native:client', members: walsender },
      { name: 'native:pg', members: apply },
    ];
  }

  async teardown(): Promise<void> {
    try {
      await this.c?.query(`DROP SUBSCRIPTION IF EXISTS ${this.sub}`);
    } catch (e) {
      log(`WARNING: could not drop subscription ${this.sub}: ${(e as Error).message}`);
    }
    await this.c?.end().catch(() => undefined);
    await this.srcAdmin.query(`DROP PUBLICATION IF EXISTS ${this.pub}`).catch(() => undefined);
  }
}
