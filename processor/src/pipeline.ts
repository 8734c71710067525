// The consumer side: kafkajs delivers messages, we decode them, gather them into micro-batches
// and hand each batch to a writer lane (lane.ts): one transaction at a time per lane, while the
// next batch fills; each partition belongs to one lane, and lanes write side by side.
//
// Offsets: the warehouse is the source of truth (cdc.offsets, written with the rows). The
// first time a partition is seen after an assignment, its stored offset decides where to
// start: messages below it are skipped, and if kafkajs starts beyond it we seek back. Kafka's
// own committed offsets trail the warehouse and serve lag tools only.
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type KafkaMessage, type LogEntry } from 'kafkajs';
import type { BatchLimits } from './batch';
import { Lane } from './lane';
import type { Decoder, Decoded } from './decode';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { tpKey, type TopicPartition } from './offsets';
import { sameTopics, tableNameForTopic } from './topics';
import type { BatchItem, BatchResult, WarehouseWriter } from './writer';

export interface PipelineOptions {
  brokers: string[];
  clientId: string;
  groupId: string;
  topics: string[];
  topicPattern: string;
  limits: BatchLimits;
  maxBackoffMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Pipeline {
  private readonly kafka: Kafka;
  private consumer: Consumer | null = null;
  private topics: string[] = [];
  private refused = new Map<string, string>();
  private readonly lanes: Lane[];
  /** Partition → lane, fixed for the life of the process so a partition's order is kept. */
  private readonly laneOf = new Map<string, Lane>();
  /** Next offset to take per partition in this assignment; unset until the warehouse was asked. */
  private readonly positions = new Map<string, bigint>();
  private readonly seeked = new Set<string>();
  private stopping = false;
  private running = false;
  /** Since when the stored offsets cannot be read (the warehouse is away), if so. */
  private offsetsFailingSince: number | null = null;
  private paused = false;
  private lastBatchAt: string | null = null;

  constructor(
    private readonly opts: PipelineOptions,
    private readonly decoder: Decoder,
    writers: WarehouseWriter[],
    private readonly readOffset: (tp: TopicPartition) => Promise<bigint | null>,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    const hooks = {
      written: (items: BatchItem[], result: BatchResult, seconds: number) => this.afterWrite(items, result, seconds),
      failing: () => this.setPaused(true),
      recovered: () => this.setPaused(this.lanes.some((l) => l.failingSince !== null)),
      stopping: () => this.stopping,
      backoff: (attempt: number) => this.backoff(attempt),
      writeError: () => this.metrics.writeErrors.inc(),
    };
    this.lanes = writers.map((w, i) => new Lane(i, opts.limits, w, hooks, log));
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.brokers,
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => {
        const { message, ...rest } = entry.log;
        const fields = { component: 'kafkajs', namespace: entry.namespace, ...rest };
        // A rebalance is routine (an instance joined or left), not an error worth an alert.
        if (/rebalanc/i.test(String(rest.error ?? ''))) this.log.info(message, fields);
        else if (entry.level <= logLevel.ERROR) this.log.error(message, fields);
        else this.log.warn(message, fields);
      },
    });
  }

  /** Topics to consume: the configured list, or those matching the pattern now. */
  async resolveTopics(): Promise<string[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = await admin.listTopics();
      if (this.opts.topicPattern) {
        const re = new RegExp(this.opts.topicPattern);
        return existing.filter((t) => re.test(t)).sort();
      }
      const missing = this.opts.topics.filter((t) => !existing.includes(t));
      if (missing.length) this.log.warn('topics do not exist yet; they are consumed once Debezium creates them', { topics: missing });
      return this.opts.topics;
    } finally {
      await admin.disconnect();
    }
  }

  /** Consumes the given topics (default: the configured ones); `refused` topics' events are
   *  rejected with the reason instead of loaded (two topics mapping to one warehouse name). */
  async start(topics?: string[], refused: Map<string, string> = new Map()): Promise<void> {
    this.topics = topics ?? (await this.resolveTopics());
    this.refused = refused;
    if (this.topics.length === 0) throw new Error(`no topic matches PROCESSOR_TOPIC_PATTERN ${this.opts.topicPattern}`);
    await this.runConsumer();
  }

  /**
   * Following capture (capture.ts): kafkajs cannot add topics to a running consumer, so a
   * changed set stops the consumer and subscribes anew. What the lanes hold is written or,
   * at the new assignment, dropped and read again from the warehouse's offsets.
   */
  async setTopics(topics: string[], refused: Map<string, string>): Promise<void> {
    this.refused = refused;
    if (this.stopping) return;
    if (sameTopics(topics, this.topics) && (this.consumer !== null || topics.length === 0)) {
      this.running = true;
      return;
    }
    const old = this.consumer;
    this.consumer = null;
    if (old) await old.disconnect().catch((err) => this.log.warn('consumer disconnect failed', { error: err }));
    this.topics = [...topics];
    if (this.stopping) return;
    if (topics.length) await this.runConsumer();
    else {
      this.running = true; // nothing captured yet: healthy, idle
      this.log.info('no change topic to consume yet');
    }
  }

  private async runConsumer(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.opts.groupId,
      maxBytesPerPartition: 10 * 1024 * 1024,
      maxBytes: 50 * 1024 * 1024,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: true,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (e) => {
      if (this.consumer !== consumer) return;
      this.running = false;
      this.log.error('consumer crashed', { error: e.payload.error, restart: e.payload.restart });
    });
    await consumer.connect();
    await consumer.subscribe({ topics: this.topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // A lane waiting for the warehouse must not hold up the partitions of the others.
      partitionsConsumedConcurrently: this.lanes.length,
      eachBatch: (payload) => this.onBatch(payload),
    });
    // A new consumer starts fetching; keep it paused while the warehouse refuses writes.
    if (this.paused) consumer.pause(this.topics.map((topic) => ({ topic })));
    this.running = true;
    this.log.info('consuming', { topics: this.topics, group: this.opts.groupId });
  }

  /** A rebalance: positions are re-read from the warehouse and unflushed messages are dropped
   *  (they are read again from the stored offsets, by us or by the partition's new owner). */
  private onAssignment(assignment: Record<string, number[]>): void {
    this.running = true;
    this.positions.clear();
    this.seeked.clear();
    const dropped = this.lanes.reduce((n, lane) => n + lane.drop(), 0);
    if (dropped) this.log.info('rebalance: dropping unwritten messages, they will be read again', { messages: dropped });
    this.log.info('partitions assigned', { assignment });
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const key = tpKey(topic, partition);
    let position = this.positions.get(key);
    if (position === undefined) {
      const stored = await this.storedOffset({ topic, partition }, heartbeat);
      if (stored === undefined) return; // stopping
      const first = batch.firstOffset();
      if (stored !== null && first !== null && BigInt(first) > stored && !this.seeked.has(key)) {
        // Kafka's committed offset is ahead of the warehouse (or the batch was dropped in a rebalance).
        this.seeked.add(key);
        this.log.info('seeking to the offset stored in the warehouse', { topic, partition, offset: stored, kafkaOffset: first });
        this.consumer!.seek({ topic, partition, offset: stored.toString() });
        return;
      }
      position = stored ?? 0n;
      this.positions.set(key, position);
    }
    let lane = this.laneOf.get(key);
    if (!lane) this.laneOf.set(key, (lane = this.lanes[this.laneOf.size % this.lanes.length]));
    let taken = 0;
    for (const m of batch.messages) {
      if (!isRunning() || isStale() || this.stopping) break;
      const offset = BigInt(m.offset);
      if (offset < position) {
        resolveOffset(m.offset);
        continue;
      }
      const decoded = await this.decode(topic, m, heartbeat);
      if (decoded === null) break;
      const bytes = (m.key?.length ?? 0) + (m.value?.length ?? 0);
      if (!(await lane.add({ topic, partition, offset, key: m.key, value: m.value, decoded }, bytes, heartbeat))) break;
      position = offset + 1n;
      this.positions.set(key, position);
      resolveOffset(m.offset);
      taken++;
    }
    this.metrics.consumed.inc({ topic }, taken);
    this.metrics.lag.set({ topic, partition: String(partition) }, Number(BigInt(batch.highWatermark) - position));
  }

  /** The warehouse's position for a partition; a warehouse that is away is waited for. */
  private async storedOffset(tp: TopicPartition, heartbeat: () => Promise<void>): Promise<bigint | null | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const stored = await this.readOffset(tp);
        this.offsetsFailingSince = null;
        return stored;
      } catch (err) {
        if (this.stopping) return undefined;
        if (this.offsetsFailingSince === null) this.offsetsFailingSince = Date.now();
        this.log.warn('cannot read the stored offset from the warehouse; retrying', { error: err, attempt, ...tp });
        await sleep(this.backoff(attempt));
        await heartbeat().catch(() => undefined);
      }
    }
  }

  /** Decodes one message; a registry that is down is waited for (null when stopping). */
  private async decode(topic: string, m: KafkaMessage, heartbeat: () => Promise<void>): Promise<Decoded | null> {
    const refusal = this.refused.get(topic);
    if (refusal !== undefined) return { kind: 'reject', stage: 'schema', table: tableNameForTopic(topic), reason: refusal };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.decoder.decode(topic, m.key, m.value);
      } catch (err) {
        if (this.stopping) return null;
        this.log.warn('schema registry unreachable; retrying', { error: err, attempt });
        await sleep(this.backoff(attempt));
        await heartbeat().catch(() => undefined);
      }
    }
  }

  private afterWrite(items: BatchItem[], result: BatchResult, seconds: number): void {
    const committedUs = BigInt(Date.now()) * 1000n;
    this.metrics.batchSeconds.observe(seconds);
    this.metrics.batchEvents.observe(items.length);
    for (const [table, t] of result.tables) {
      this.metrics.written.inc({ table }, t.written);
      if (t.duplicates) this.metrics.duplicates.inc({ table }, t.duplicates);
      for (const ts of t.sourceTs) this.metrics.freshness.observe(Number(committedUs - ts) / 1e6);
    }
    for (const r of result.rejects) {
      this.metrics.rejected.inc({ table: r.table, stage: r.stage });
      this.log.warn('event rejected', { table: r.table, stage: r.stage, reason: r.reason, topic: r.topic, partition: r.partition, offset: r.offset });
    }
    this.lastBatchAt = new Date().toISOString();
    this.log.debug('batch written', { messages: items.length, seconds, alreadyStored: result.alreadyStored, phasesMs: roundAll(result.phases) });
    // Informational only (lag tools); the warehouse already holds the truth.
    const offsets = [...result.offsets.values()].map((o) => ({ topic: o.tp.topic, partition: o.tp.partition, offset: o.offset.toString() }));
    if (offsets.length && this.consumer && !this.stopping) {
      this.consumer.commitOffsets(offsets).catch((err) => this.log.debug('offset commit to Kafka skipped', { error: err }));
    }
  }

  /** Backpressure: while the warehouse refuses writes, stop fetching. */
  private setPaused(paused: boolean): void {
    if (!this.consumer || paused === this.paused) return;
    this.paused = paused;
    const topics = this.topics.map((topic) => ({ topic }));
    if (paused) this.consumer.pause(topics);
    else this.consumer.resume(topics);
    this.log.info(paused ? 'consumption paused until the warehouse accepts writes' : 'consumption resumed');
  }

  private backoff(attempt: number): number {
    return Math.min(this.opts.maxBackoffMs, 100 * 2 ** attempt);
  }

  health(): { ok: boolean; [k: string]: unknown } {
    const since = [this.offsetsFailingSince, ...this.lanes.map((l) => l.failingSince)].filter((t): t is number => t !== null);
    return {
      ok: this.running && since.length === 0 && !this.stopping,
      consuming: this.running,
      topics: this.topics,
      warehouse: since.length === 0 ? 'ok' : `failing since ${new Date(Math.min(...since)).toISOString()}`,
      lastBatchAt: this.lastBatchAt,
    };
  }

  /** SIGTERM: stop fetching, write (or give up, rolled back) what was taken, then leave. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.consumer?.disconnect().catch((err) => this.log.warn('consumer disconnect failed', { error: err }));
    await Promise.all(this.lanes.map((lane) => lane.drain()));
    this.running = false;
  }
}

function roundAll(phases: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v * 10) / 10]));
}
