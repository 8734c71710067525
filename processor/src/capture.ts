// Following Kafka Connect: every few seconds, which Debezium PostgreSQL connectors exist, what
// they capture (topic.prefix, table.include.list, …) and which of their change topics exist in
// Kafka. A changed set re-subscribes the pipeline; a table newly in capture gets one incremental
// snapshot (signals.ts), so its rows from before the change land too.
import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';
import type { CapturedTables, Refusals } from './captured-tables';
import type { Logger } from './log';
import { authHeaders, type BasicCredentials } from './rest-auth';
import { SignalSender, dataCollection, snapshotSignal } from './signals';
import { captureSource, captures, changeTopics, transactionTopics, namedTables, sameTopics, sourceOfTopic, type CaptureSource } from './topics';

export interface ConnectorState {
  source: CaptureSource;
  /** Connector and every task RUNNING. */
  running: boolean;
}

/** Connector config key: `false` keeps a connector's changes out of this warehouse. */
export const OPT_OUT_KEY = 'cdc.warehouse.follow';

/** Connect refused the credentials (401/403): at start a configuration mistake, not an outage. */
export class ConnectRefusedError extends Error {}

/** GET /connectors?expand=info&expand=status → the Debezium PostgreSQL connectors (optionally only these names). */
export async function readConnectors(connectUrl: string, only: string[] = [], auth: BasicCredentials | null = null): Promise<ConnectorState[]> {
  const res = await fetch(`${connectUrl.replace(/\/$/, '')}/connectors?expand=info&expand=status`, { headers: authHeaders(auth), signal: AbortSignal.timeout(10_000) });
  if (res.status === 401 || res.status === 403) {
    throw new ConnectRefusedError(`GET /connectors answered ${res.status}: ${auth ? `user ${auth.username} refused` : 'credentials needed'} (connect.username / connect.password: CONNECT_USERNAME, CONNECT_PASSWORD)`);
  }
  if (!res.ok) throw new Error(`GET /connectors answered ${res.status}`);
  return parseConnectors(await res.json(), only);
}

export function parseConnectors(body: any, only: string[] = []): ConnectorState[] {
  const out: ConnectorState[] = [];
  for (const [name, c] of Object.entries<any>(body ?? {})) {
    if (only.length && !only.includes(name)) continue;
    if (c?.info?.type && c.info.type !== 'source') continue;
    // A connector whose changes are not for this warehouse (a test's, another team's) says so in
    // its own config; naming it in PROCESSOR_CONNECTORS overrides that.
    if (!only.length && String(c?.info?.config?.[OPT_OUT_KEY] ?? '').toLowerCase() === 'false') continue;
    const source = captureSource(name, c?.info?.config ?? {});
    if (!source) continue;
    const tasks: any[] = c?.status?.tasks ?? [];
    const running = c?.status?.connector?.state === 'RUNNING' && tasks.length > 0 && tasks.every((t) => t.state === 'RUNNING');
    out.push({ source, running });
  }
  return out.sort((a, b) => a.source.connector.localeCompare(b.source.connector));
}

/** The configuration the connector's tasks run with (after a config change it trails the connector's). */
async function taskSources(connectUrl: string, connector: string, auth: BasicCredentials | null): Promise<CaptureSource[]> {
  const res = await fetch(`${connectUrl.replace(/\/$/, '')}/connectors/${encodeURIComponent(connector)}/tasks`, { headers: authHeaders(auth), signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET /connectors/${connector}/tasks answered ${res.status}`);
  const tasks = (await res.json()) as Array<{ config: Record<string, string> }>;
  return tasks.map((t) => captureSource(connector, t.config)).filter((s): s is CaptureSource => s !== null);
}

/**
 * Asks for a new incremental snapshot of a warehouse table (for WarehouseWriter's onResnapshot
 * hook: a schema change left rows the warehouse cannot fill). The request is recorded in
 * cdc.captured_tables and sent by the processor that follows the table's connector.
 */
export async function requestResnapshot(record: CapturedTables, table: string, reason: string, log: Logger): Promise<boolean> {
  const marked = await record.requestResnapshot(table, reason);
  if (marked) log.info('re-snapshot requested; sent to the connector by the processor following it (CONNECT_URL)', { table, reason });
  else log.warn('cannot request a re-snapshot: the table is not in cdc.captured_tables (in capture)', { table, reason });
  return marked;
}

/** How long a connector may be missing from Connect's answer before it counts as deleted. */
export const GONE_AFTER_MS = 60_000;

/** A requested snapshot whose table still has no topic this long after is asked for again
 *  (CapturedTables.retryUnanswered), this many requests in all. */
const SNAPSHOT_ANSWER_SECONDS = 45;
const SNAPSHOT_ATTEMPTS = 3;

export interface FollowOptions {
  connectUrl: string;
  /** Connect's REST credentials, when it asks for them (SECURITY=on). */
  connectAuth?: BasicCredentials | null;
  connectors: string[];
  pollMs: number;
  brokers: string[];
  clientId: string;
  /** TLS and SASL (kafka-options.ts). */
  kafkaAuth?: Pick<KafkaConfig, 'ssl' | 'sasl'>;
  /** Kafka's topic list (default: a kafkajs admin client); the clock. Replaceable in tests. */
  listTopics?: () => Promise<string[]>;
  now?: () => number;
}

/** What the pipeline is told: the topics to consume, and those whose events are refused. */
export type ApplyTopics = (topics: string[], refused: Refusals) => Promise<void>;

export class CaptureFollower {
  private readonly kafka: Kafka;
  private readonly signals: SignalSender;
  private topics: string[] = [];
  private refusedKey = '';
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private connectFailing = false;
  private pollFailing = false;
  private admin: Admin | null = null;
  private readonly lastKnown = new Map<string, ConnectorState>();
  private readonly missingSince = new Map<string, number>();
  private readonly warned = new Set<string>();
  private tick: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: FollowOptions,
    private readonly record: CapturedTables,
    private readonly apply: ApplyTopics,
    private readonly log: Logger,
  ) {
    this.kafka = new Kafka({ clientId: `${opts.clientId}-follow`, brokers: opts.brokers, logLevel: logLevel.NOTHING, ...opts.kafkaAuth });
    this.signals = new SignalSender(this.kafka);
  }

  /** The first look (Connect must answer), then a look every pollMs. */
  async start(): Promise<void> {
    await this.poll(true);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.tick = this.poll(false)
        .then(() => {
          if (this.pollFailing) this.log.info('following capture works again');
          this.pollFailing = false;
        })
        .catch((err) => {
          // Once per outage (the warehouse or Kafka away): what is loaded goes on being loaded.
          if (!this.pollFailing) this.log.warn('following capture failed; trying again every poll', { error: err });
          this.pollFailing = true;
        })
        .finally(() => this.schedule());
    }, this.opts.pollMs);
    this.timer.unref(); // the consumer keeps the process alive, not this
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick.catch(() => undefined);
    await this.signals.close();
    await this.admin?.disconnect().catch(() => undefined);
  }

  /** Marks a warehouse table for a new incremental snapshot; sent at the next look. */
  requestResnapshot(table: string, reason: string): Promise<boolean> {
    return requestResnapshot(this.record, table, reason, this.log);
  }

  private async poll(first: boolean): Promise<void> {
    let answered: ConnectorState[];
    try {
      answered = await readConnectors(this.opts.connectUrl, this.opts.connectors, this.opts.connectAuth ?? null);
      if (this.connectFailing) this.log.info('Kafka Connect answers again', { connect: this.opts.connectUrl });
      this.connectFailing = false;
    } catch (err) {
      // Wrong or missing credentials do not heal by waiting: the start fails with them.
      if (first && err instanceof ConnectRefusedError) throw err;
      // Keep loading what is loaded: Connect being away changes nothing in Kafka.
      if (!this.connectFailing) this.log.warn('Kafka Connect unreachable; the loaded topics stay as they are', { connect: this.opts.connectUrl, error: err });
      this.connectFailing = true;
      if (first) await this.startFromRecord();
      return;
    }
    for (const s of answered) await this.record.sync(s.source, namedTables(s.source));
    const states = [...answered, ...(await this.missingConnectors(answered))];
    const sources = states.map((s) => s.source);

    const existing = await this.listTopics();
    const changes = changeTopics(sources, existing);
    // Transaction metadata is consumed too, but claims no warehouse name.
    const topics = [...changes, ...transactionTopics(sources, existing)].sort();
    const refused = await this.record.claim(changes.map((topic) => ({ topic, connector: sourceOfTopic(sources, topic)?.src.connector ?? null })));
    const refusedKey = JSON.stringify([...refused].sort());
    if (first || !sameTopics(topics, this.topics) || refusedKey !== this.refusedKey) {
      const added = topics.filter((t) => !this.topics.includes(t));
      const removed = this.topics.filter((t) => !topics.includes(t));
      if (first) this.log.info('following Kafka Connect', { connect: this.opts.connectUrl, connectors: sources.map((s) => s.connector), topics });
      else this.log.info('captured topics changed', { added, removed });
      for (const [topic, reason] of refused) if (!this.refusedKey.includes(JSON.stringify(topic))) this.log.error('topic not loaded: warehouse name taken', { topic, reason });
      this.topics = topics;
      this.refusedKey = refusedKey;
      await this.apply(topics, refused);
    }
    const again = await this.record.retryUnanswered(existing, SNAPSHOT_ANSWER_SECONDS, SNAPSHOT_ATTEMPTS).catch(() => []);
    if (again.length) this.log.warn('incremental snapshot asked for again: its table has no topic yet (signal lost in a task restart?)', { topics: again });
    for (const state of states) await this.sendSnapshots(state).catch((err) => this.log.warn('snapshot request not sent; trying again', { connector: state.source.connector, error: err }));
  }

  private async listTopics(): Promise<string[]> {
    if (this.opts.listTopics) return this.opts.listTopics();
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    try {
      return await this.admin.listTopics();
    } catch (err) {
      await this.admin.disconnect().catch(() => undefined);
      this.admin = null;
      throw err;
    }
  }

  /**
   * Connectors that Connect no longer lists. A Connect that restarts may answer before it has
   * read its configurations, so a connector counts as deleted only after GONE_AFTER_MS: until
   * then its last known capture stays (its tables keep loading, no snapshot is sent). Deleted,
   * its tables leave capture (their warehouse tables stay; a return snapshots them again).
   */
  private async missingConnectors(answered: ConnectorState[]): Promise<ConnectorState[]> {
    const now = (this.opts.now ?? Date.now)();
    const present = new Set(answered.map((s) => s.source.connector));
    for (const s of answered) {
      this.lastKnown.set(s.source.connector, s);
      this.missingSince.delete(s.source.connector);
    }
    const followed = (c: string) => !this.opts.connectors.length || this.opts.connectors.includes(c);
    const absent = new Set([...this.lastKnown.keys(), ...(await this.record.connectors())].filter((c) => !present.has(c) && followed(c)));
    const kept: ConnectorState[] = [];
    for (const connector of absent) {
      const since = this.missingSince.get(connector) ?? now;
      this.missingSince.set(connector, since);
      if (now - since < GONE_AFTER_MS) {
        const last = this.lastKnown.get(connector);
        if (last) kept.push({ ...last, running: false });
        continue;
      }
      this.log.info('connector deleted: its tables leave capture (warehouse tables stay)', { connector });
      await this.record.connectorGone(connector);
      this.lastKnown.delete(connector);
      this.missingSince.delete(connector);
    }
    return kept;
  }

  /** Connect away at start: load the topics the warehouse recorded as in capture until it answers. */
  private async startFromRecord(): Promise<void> {
    const existing = new Set(await this.listTopics());
    const topics = (await this.record.inCapture(this.opts.connectors)).filter((t) => existing.has(t));
    const refused = await this.record.claim(topics.map((topic) => ({ topic, connector: null })));
    this.log.warn('starting with the topics recorded in cdc.captured_tables until Kafka Connect answers', { topics });
    this.topics = topics;
    this.refusedKey = JSON.stringify([...refused].sort());
    await this.apply(topics, refused);
  }

  /**
   * Pending snapshots of a connector go out once its tasks run with a configuration that
   * captures the table: a signal read by a task still on the old include list would be
   * dropped by Debezium (the table is unknown to it).
   */
  private async sendSnapshots(state: ConnectorState): Promise<void> {
    const src = state.source;
    const pending = await this.record.pending(src.prefix);
    if (!pending.length) return;
    if (!src.kafkaSignals) {
      this.warnOnce(`signals:${src.connector}`, 'cannot request incremental snapshots: the connector has no Kafka signal channel '
        + '(signal.enabled.channels=source,kafka, signal.kafka.topic, signal.data.collection)', { connector: src.connector, tables: pending.map((p) => `${p.schema}.${p.table}`) });
      return;
    }
    if (!state.running) return;
    const tasks = await taskSources(this.opts.connectUrl, src.connector, this.opts.connectAuth ?? null);
    const ready = pending.filter((p) => tasks.length > 0 && tasks.every((t) => captures(t, p.schema, p.table)));
    if (!ready.length) return;
    const collections = ready.map((p) => `${p.schema}.${p.table}`);
    const taken = await this.record.request(ready.map((p) => p.topic), async (topics) => {
      const names = ready.filter((p) => topics.includes(p.topic)).map((p) => dataCollection(p.schema, p.table));
      await this.signals.send(src.signalTopic, snapshotSignal(src.prefix, names));
    });
    if (taken.length) {
      this.log.info('incremental snapshot requested', {
        connector: src.connector, signalTopic: src.signalTopic, tables: collections.filter((_, i) => taken.includes(ready[i].topic)),
        reasons: [...new Set(ready.map((p) => p.reason))],
      });
    }
  }

  private warnOnce(key: string, message: string, fields: Record<string, unknown>): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(message, fields);
  }
}
