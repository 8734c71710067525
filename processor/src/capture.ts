// Following Kafka Connect: every few seconds, which Debezium PostgreSQL connectors exist, what
// they capture (topic.prefix, table.include.list, …) and which of their change topics exist in
// Kafka. A changed set re-subscribes the pipeline; a table newly in capture gets one incremental
// snapshot (signals.ts), so its rows from before the change land too.
import { Kafka, logLevel, type Admin } from 'kafkajs';
import type { CapturedTables, Refusals } from './captured-tables';
import type { Logger } from './log';
import { SignalSender, snapshotSignal } from './signals';
import { captureSource, captures, changeTopics, namedTables, sameTopics, sourceOfTopic, type CaptureSource } from './topics';

export interface ConnectorState {
  source: CaptureSource;
  /** Connector and every task RUNNING. */
  running: boolean;
}

/** GET /connectors?expand=info&expand=status → the Debezium PostgreSQL connectors (optionally only these names). */
export async function readConnectors(connectUrl: string, only: string[] = []): Promise<ConnectorState[]> {
  const res = await fetch(`${connectUrl.replace(/\/$/, '')}/connectors?expand=info&expand=status`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET /connectors answered ${res.status}`);
  return parseConnectors(await res.json(), only);
}

export function parseConnectors(body: any, only: string[] = []): ConnectorState[] {
  const out: ConnectorState[] = [];
  for (const [name, c] of Object.entries<any>(body ?? {})) {
    if (only.length && !only.includes(name)) continue;
    if (c?.info?.type && c.info.type !== 'source') continue;
    const source = captureSource(name, c?.info?.config ?? {});
    if (!source) continue;
    const tasks: any[] = c?.status?.tasks ?? [];
    const running = c?.status?.connector?.state === 'RUNNING' && tasks.length > 0 && tasks.every((t) => t.state === 'RUNNING');
    out.push({ source, running });
  }
  return out.sort((a, b) => a.source.connector.localeCompare(b.source.connector));
}

/** The configuration the connector's tasks run with (after a config change it trails the connector's). */
async function taskSources(connectUrl: string, connector: string): Promise<CaptureSource[]> {
  const res = await fetch(`${connectUrl.replace(/\/$/, '')}/connectors/${encodeURIComponent(connector)}/tasks`, { signal: AbortSignal.timeout(10_000) });
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

export interface FollowOptions {
  connectUrl: string;
  connectors: string[];
  pollMs: number;
  brokers: string[];
  clientId: string;
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
  private readonly warned = new Set<string>();
  private tick: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: FollowOptions,
    private readonly record: CapturedTables,
    private readonly apply: ApplyTopics,
    private readonly log: Logger,
  ) {
    this.kafka = new Kafka({ clientId: `${opts.clientId}-follow`, brokers: opts.brokers, logLevel: logLevel.NOTHING });
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
    let states: ConnectorState[];
    try {
      states = await readConnectors(this.opts.connectUrl, this.opts.connectors);
      if (this.connectFailing) this.log.info('Kafka Connect answers again', { connect: this.opts.connectUrl });
      this.connectFailing = false;
    } catch (err) {
      if (first) throw new Error(`Kafka Connect ${this.opts.connectUrl} (CONNECT_URL): ${(err as Error).message}`);
      // Keep loading what is loaded: Connect being away changes nothing in Kafka.
      if (!this.connectFailing) this.log.warn('Kafka Connect unreachable; the loaded topics stay as they are', { error: err });
      this.connectFailing = true;
      return;
    }
    const sources = states.map((s) => s.source);
    for (const src of sources) await this.record.sync(src, namedTables(src));
    await this.forgetDeleted(sources);

    const existing = await this.listTopics();
    const topics = changeTopics(sources, existing);
    const refused = await this.record.claim(topics.map((topic) => ({ topic, connector: sourceOfTopic(sources, topic)?.src.connector ?? null })));
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
    for (const state of states) await this.sendSnapshots(state).catch((err) => this.log.warn('snapshot request not sent; trying again', { connector: state.source.connector, error: err }));
  }

  private async listTopics(): Promise<string[]> {
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

  /** Connectors deleted from Connect: their tables leave capture (a return re-snapshots them). */
  private async forgetDeleted(sources: CaptureSource[]): Promise<void> {
    const present = new Set(sources.map((s) => s.connector));
    for (const connector of await this.record.connectors()) {
      if (present.has(connector) || (this.opts.connectors.length && !this.opts.connectors.includes(connector))) continue;
      this.log.info('connector deleted: its tables leave capture (warehouse tables stay)', { connector });
      await this.record.connectorGone(connector);
    }
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
    const tasks = await taskSources(this.opts.connectUrl, src.connector);
    const ready = pending.filter((p) => tasks.length > 0 && tasks.every((t) => captures(t, p.schema, p.table)));
    if (!ready.length) return;
    const collections = ready.map((p) => `${p.schema}.${p.table}`);
    const taken = await this.record.request(ready.map((p) => p.topic), async (topics) => {
      const names = ready.filter((p) => topics.includes(p.topic)).map((p) => `${p.schema}.${p.table}`);
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
