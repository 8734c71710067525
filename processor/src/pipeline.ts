// The consumer side: kafkajs delivers messages, we decode them, gather them into micro-batches
// and hand each batch to a writer lane (lane.ts): one transaction at a time per lane, while the
// next batch fills; each partition belongs to one lane, and lanes write side by side.
//
// Offsets: the warehouse is the source of truth (cdc.offsets, written with the rows). On every
// assignment, each partition's stored offset decides where to read: we seek there (without a
// stored offset, to the earliest offset the topic retains), whatever Kafka's committed offset
// says; messages below it are skipped. Kafka's own committed offsets trail the warehouse and
// serve lag tools only. Each message carries where the reading continued from (`from`), and
// the writer refuses a partition whose batch does not continue the stored offset: it is then
// read again from there (rewind).
import { Kafka, logLevel, type Admin, type Consumer, type EachBatchPayload, type KafkaConfig, type KafkaMessage, type LogEntry } from 'kafkajs';
import type { BatchLimits } from './batch';
import { Lane } from './lane';
import type { Decoder, Decoded } from './decode';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import type { OffsetGap } from './errors';
import { startPosition, tpKey, type TopicPartition } from './offsets';
import { backoffDelay, retryUntilStopped, sleep } from './retry';
import { sameTopics, tableNameForTopic } from './topics';
import type { BatchItem, BatchResult, WarehouseWriter } from './writer';
import { RejectLog } from './rejects';

/** How often the offsets written to the warehouse are committed to Kafka too (for lag tools). */
export const KAFKA_COMMIT_INTERVAL_MS = 1000;

export interface PipelineOptions {
  brokers: string[];
  clientId: string;
  /** TLS and SASL (kafka-options.ts). */
  kafkaAuth?: Pick<KafkaConfig, 'ssl' | 'sasl'>;
  groupId: string;
  topics: string[];
  topicPattern: string;
  limits: BatchLimits;
  maxBackoffMs: number;
}

export class Pipeline {
  private readonly kafka: Kafka;
  private consumer: Consumer | null = null;
  private admin: Admin | null = null;
  private topics: string[] = [];
  private refused = new Map<string, string>();
  private readonly lanes: Lane[];
  /** Partition → lane, fixed for the life of the process so a partition's order is kept. */
  private readonly laneOf = new Map<string, Lane>();
  /** Next offset to take per partition in this assignment; unset until the warehouse was asked. */
  private readonly positions = new Map<string, bigint>();
  /** Per partition, in this assignment: the finding of its position (read, then seek), once. */
  private readonly positioning = new Map<string, Promise<boolean>>();
  /** Where each partition was sought to, and whether a batch past it already made us seek again. */
  private readonly seekTargets = new Map<string, bigint>();
  private readonly reseeked = new Set<string>();
  /** Bumped by every assignment, and per partition by every rewind: work started under an
   *  older value (a message being decoded, a batch waiting for room) must not move positions. */
  private generation = 0;
  /** Partitions of the current assignment. */
  private readonly assigned = new Set<string>();
  private readonly epochs = new Map<string, number>();
  private stopping = false;
  private running = false;
  /** Since when the stored offsets cannot be read (the warehouse is away), if so. */
  private offsetsFailingSince: number | null = null;
  private paused = false;
  private lastBatchAt: string | null = null;
  /** Since when decoding has waited for an unreachable schema registry (null: it answers). */
  private registryFailingSince: number | null = null;
  /** The first reject of each reason is logged, then a line a minute with the count. */
  private readonly rejectLog = new RejectLog();

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
      gap: (gaps: OffsetGap[]) => this.rewind(gaps),
    };
    this.lanes = writers.map((w, i) => new Lane(i, opts.limits, w, hooks, log));
    writers.forEach((w, i) => { w.onConnectionLost = () => void this.recheck(this.lanes[i]); });
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.brokers,
      ...opts.kafkaAuth,
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
    // One admin client (for the topics' earliest offsets) for the life of the process.
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    // A consumer replaced by setTopics may still report a join: only the current one's counts.
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      if (this.consumer === consumer) this.onAssignment(e.payload.memberAssignment);
    });
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
    this.generation++;
    this.positions.clear();
    this.positioning.clear();
    this.seekTargets.clear();
    this.reseeked.clear();
    // Offsets of the old assignment: not ours to commit any more (commitToKafka also keeps to
    // the partitions assigned now, for a write that lands after this).
    this.kafkaCommits.clear();
    const dropped = this.lanes.reduce((n, lane) => n + lane.drop(), 0);
    if (dropped) this.log.info('rebalance: dropping unwritten messages, they will be read again', { messages: dropped });
    this.log.info('partitions assigned', { assignment });
    this.assigned.clear();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) this.assigned.add(tpKey(topic, p));
    // Position every partition now: one that receives nothing new would otherwise never be
    // sought back to the warehouse's position (kafkajs delivers no empty batch).
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) void this.position({ topic, partition });
    }
  }

  /** A write found partitions that do not continue the stored offset (lane.ts has dropped their
   *  open messages): forget what we believed and read them again from the warehouse's position. */
  private rewind(gaps: OffsetGap[]): void {
    for (const g of gaps) {
      const key = tpKey(g.topic, g.partition);
      this.epochs.set(key, (this.epochs.get(key) ?? 0) + 1);
      this.positions.delete(key);
      this.positioning.delete(key);
      this.seekTargets.delete(key);
      this.reseeked.delete(key);
      // A batch written after a rebalance may name a partition that is someone else's now.
      if (!this.stopping && this.consumer && this.assigned.has(key)) void this.position({ topic: g.topic, partition: g.partition });
    }
  }

  /**
   * A lane's warehouse connection dropped: the server may have lost commits it acknowledged
   * (synchronous_commit = off). Once the warehouse answers again, each of the lane's partitions
   * whose stored offset is behind what we believe was written is read again from there. A write
   * would find it out too, but a partition that stays quiet would keep its hole until then.
   */
  private async recheck(lane: Lane): Promise<void> {
    const generation = this.generation;
    for (const [key, owner] of this.laneOf) {
      if (owner !== lane || !this.assigned.has(key)) continue;
      const [topic, p] = key.split('\u0000');
      const tp = { topic, partition: Number(p) };
      const stored = await retryUntilStopped(() => this.readOffset(tp), {
        maxBackoffMs: this.opts.maxBackoffMs,
        stop: () => this.stopping || this.generation !== generation,
      });
      if (stored === undefined || this.generation !== generation) return;
      const believed = lane.pendingFrom(key) ?? this.positions.get(key);
      if (believed === undefined || (stored ?? 0n) >= believed) continue;
      // A false alarm (a write committing meanwhile) only costs reading a few messages again.
      lane.dropPartitions(new Set([key]));
      this.log.warn('the warehouse lost writes it had acknowledged; reading the partition again from its stored offset', { ...tp, stored: (stored ?? 0n).toString(), believed: believed.toString() });
      this.rewind([{ ...tp, stored: stored ?? 0n, first: believed }]);
    }
  }

  private token(key: string): string {
    return `${this.generation}/${this.epochs.get(key) ?? 0}`;
  }

  /** Reads the partition's stored offset and seeks there, once per assignment (or rewind).
   *  False when stopping or superseded by a newer assignment or rewind. */
  private position(tp: TopicPartition): Promise<boolean> {
    const key = tpKey(tp.topic, tp.partition);
    let p = this.positioning.get(key);
    if (!p) {
      p = this.findPosition(tp, this.token(key));
      this.positioning.set(key, p);
    }
    return p;
  }

  private async findPosition(tp: TopicPartition, token: string): Promise<boolean> {
    const key = tpKey(tp.topic, tp.partition);
    // The seek must reach the consumer this assignment belongs to: setTopics may replace it while
    // the offset is read, and its successor is not running yet (kafkajs throws on a seek then).
    const consumer = this.consumer;
    const superseded = () => this.stopping || this.token(key) !== token || this.consumer !== consumer;
    const found = await retryUntilStopped(async () => ({ stored: await this.readOffset(tp), low: await this.lowWatermark(tp) }), {
      maxBackoffMs: this.opts.maxBackoffMs,
      stop: superseded,
      onError: (err, attempt) => {
        if (this.offsetsFailingSince === null) this.offsetsFailingSince = Date.now();
        this.log.warn('cannot read the stored offset from the warehouse (or the earliest from Kafka); retrying', { error: err, attempt, ...tp });
      },
    });
    if (!found || superseded() || consumer === null) return false;
    this.offsetsFailingSince = null;
    const start = startPosition(found.stored, found.low);
    if (start.lost > 0n) {
      this.log.warn(`${tp.topic}[${tp.partition}]: ${start.lost} offsets were deleted by Kafka's retention before the warehouse stored them; reading from the earliest retained offset`, {
        ...tp, storedOffset: found.stored?.toString() ?? null, earliestOffset: found.low.toString(), lostOffsets: start.lost.toString(),
      });
    }
    try {
      consumer.seek({ topic: tp.topic, partition: tp.partition, offset: start.seek.toString() });
    } catch (err) {
      // Not running (stopping, or crashed and restarting): its next batch or assignment asks again.
      if (this.positioning.get(key) !== undefined && this.token(key) === token) this.positioning.delete(key);
      this.log.warn('cannot seek the partition yet; it is positioned again at its next batch', { error: err, ...tp });
      return false;
    }
    this.positions.set(key, start.cover);
    this.seekTargets.set(key, start.seek);
    this.log.info('reading from the offset stored in the warehouse', { ...tp, offset: start.seek.toString(), stored: found.stored !== null });
    return true;
  }

  /** The earliest offset the topic still holds for a partition (Kafka's low watermark). */
  private async lowWatermark(tp: TopicPartition): Promise<bigint> {
    const offsets = await this.admin!.fetchTopicOffsets(tp.topic);
    const p = offsets.find((o) => o.partition === tp.partition);
    if (!p) throw new Error(`${tp.topic} has no partition ${tp.partition}`);
    return BigInt(p.low);
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const key = tpKey(topic, partition);
    if (!this.positions.has(key)) {
      if (!(await this.waitHeartbeating(this.position({ topic, partition }), heartbeat))) return;
      // This batch was fetched before the seek: the next one starts where the warehouse stands.
      if (isStale()) return;
    }
    const token = this.token(key);
    const current = () => this.token(key) === token;
    let position = this.positions.get(key);
    if (position === undefined) return;
    let lane = this.laneOf.get(key);
    if (!lane) this.laneOf.set(key, (lane = this.lanes[this.laneOf.size % this.lanes.length]));
    let taken = 0;
    for (const m of batch.messages) {
      if (!isRunning() || isStale() || this.stopping || !current()) break;
      const offset = BigInt(m.offset);
      if (offset < position) {
        resolveOffset(m.offset);
        continue;
      }
      if (taken === 0 && this.startsPastTarget(key, offset)) {
        // Kafka delivered from elsewhere than where we sought (a fetch that crossed the seek).
        this.consumer!.seek({ topic, partition, offset: this.seekTargets.get(key)!.toString() });
        break;
      }
      const decoded = await this.decode(topic, m, heartbeat);
      if (decoded === null || !current()) break;
      const bytes = (m.key?.length ?? 0) + (m.value?.length ?? 0);
      // `from`: we read on from `position` to this message; the writer checks it against the
      // warehouse, so a position believed here but lost there is caught, not skipped over.
      if (!(await lane.add({ topic, partition, offset, key: m.key, value: m.value, decoded, from: position }, bytes, heartbeat, current))) break;
      if (!current()) break;
      position = offset + 1n;
      this.positions.set(key, position);
      resolveOffset(m.offset);
      taken++;
    }
    this.metrics.consumed.inc({ topic }, taken);
    this.metrics.lag.set({ topic, partition: String(partition) }, Number(BigInt(batch.highWatermark) - position));
  }

  /** The first message taken after a seek should be at the seek target. Once it is past it, we
   *  seek once more; past it again, the offsets between are not messages (transaction markers,
   *  compaction) and reading goes on. */
  private startsPastTarget(key: string, offset: bigint): boolean {
    const target = this.seekTargets.get(key);
    if (target === undefined || offset <= target || this.reseeked.has(key)) {
      this.seekTargets.delete(key);
      return false;
    }
    this.reseeked.add(key);
    return true;
  }

  /** Awaits `p`, heartbeating meanwhile so that a long wait does not cost the assignment. */
  private async waitHeartbeating<T>(p: Promise<T>, heartbeat: () => Promise<void>): Promise<T> {
    for (;;) {
      const done = await Promise.race([p.then((v) => ({ v })), sleep(2000).then(() => null)]);
      if (done) return done.v;
      await heartbeat().catch(() => undefined);
    }
  }

  /** Decodes one message; a registry that is down is waited for (null when stopping). */
  private async decode(topic: string, m: KafkaMessage, heartbeat: () => Promise<void>): Promise<Decoded | null> {
    const refusal = this.refused.get(topic);
    if (refusal !== undefined) return { kind: 'reject', stage: 'schema', table: tableNameForTopic(topic), reason: refusal };
    const decoded = await retryUntilStopped(() => this.decoder.decode(topic, m.key, m.value), {
      maxBackoffMs: this.opts.maxBackoffMs,
      stop: () => this.stopping,
      onError: (err, attempt) => {
        this.registryFailingSince ??= Date.now();
        this.log.warn('schema registry unavailable; retrying', { error: err, code: (err as { code?: unknown })?.code, attempt });
      },
      between: heartbeat,
    });
    if (decoded && this.registryFailingSince !== null) {
      this.log.info('schema registry answers again', { waitedSeconds: Math.round((Date.now() - this.registryFailingSince) / 1000) });
      this.registryFailingSince = null;
    }
    return decoded ?? null;
  }

  /** Called after every committed batch (main.ts: a consistency step). */
  afterBatch: (() => void) | null = null;

  /** Whether `topic` is among the topics consumed now. */
  reads(topic: string): boolean {
    return this.topics.includes(topic);
  }

  private afterWrite(items: BatchItem[], result: BatchResult, seconds: number): void {
    this.afterBatch?.();
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
      const logged = this.rejectLog.take(r);
      if (logged) {
        this.log.warn('event rejected', {
          table: r.table, stage: r.stage, reason: r.reason, topic: r.topic, partition: r.partition, offset: r.offset,
          ...(logged.notLoggedSince ? { sameRejectedSinceLastLine: logged.notLoggedSince } : {}),
        });
      }
      // Reasons name the column and rule, not row values; the event itself only at debug level.
      this.log.debug('rejected event payload', { topic: r.topic, partition: r.partition, offset: r.offset, payload: r.payload });
    }
    this.lastBatchAt = new Date().toISOString();
    this.log.debug('batch written', { messages: items.length, seconds, alreadyStored: result.alreadyStored, phasesMs: roundAll(result.phases) });
    if (this.stopping) return; // the consumer is leaving: Kafka's offsets stay behind the warehouse's
    for (const o of result.offsets.values()) this.kafkaCommits.set(tpKey(o.tp.topic, o.tp.partition), { topic: o.tp.topic, partition: o.tp.partition, offset: o.offset.toString() });
    if (!this.kafkaCommitTimer && this.kafkaCommits.size) {
      this.kafkaCommitTimer = setTimeout(() => void this.commitToKafka(), KAFKA_COMMIT_INTERVAL_MS);
      this.kafkaCommitTimer.unref();
    }
  }

  /** Offsets written since the last commit to Kafka, per partition (the newest). */
  private readonly kafkaCommits = new Map<string, { topic: string; partition: number; offset: string }>();
  private kafkaCommitTimer: NodeJS.Timeout | null = null;

  /**
   * Kafka's committed offsets are informational only (lag tools: the warehouse holds the truth),
   * so they go once a second rather than after every batch: at a few hundred changes a second a
   * commit per batch was a Kafka round trip, and a write to __consumer_offsets, per few changes.
   */
  private async commitToKafka(): Promise<void> {
    if (this.kafkaCommitTimer) clearTimeout(this.kafkaCommitTimer);
    this.kafkaCommitTimer = null;
    if (!this.consumer) return; // a new consumer is on its way (setTopics): it commits them
    const offsets = [...this.kafkaCommits].filter(([key]) => this.assigned.has(key)).map(([, o]) => o);
    this.kafkaCommits.clear();
    if (!offsets.length) return;
    await this.consumer.commitOffsets(offsets).catch((err) => this.log.debug('offset commit to Kafka skipped', { error: err }));
  }

  /** Backpressure: while the warehouse refuses writes, stop fetching. */
  private setPaused(paused: boolean): void {
    if (!this.consumer || paused === this.paused) return;
    this.paused = paused;
    const topics = this.topics.map((topic) => ({ topic }));
    try {
      if (paused) this.consumer.pause(topics);
      else this.consumer.resume(topics);
    } catch (err) {
      // kafkajs throws when its consumer is not running (stopping, or restarting after a crash): a
      // new consumer starts paused if this.paused says so (runConsumer), so the state is enough.
      this.log.debug('consumer not running: pause state kept for the next one', { paused, error: err });
      return;
    }
    this.log.info(paused ? 'consumption paused until the warehouse accepts writes' : 'consumption resumed');
  }

  private backoff(attempt: number): number {
    return backoffDelay(attempt, { maxBackoffMs: this.opts.maxBackoffMs });
  }

  health(): { ok: boolean; [k: string]: unknown } {
    const since = [this.offsetsFailingSince, ...this.lanes.map((l) => l.failingSince)].filter((t): t is number => t !== null);
    // Waiting for the registry loses nothing and heals by itself (a restart would not help, and a
    // 503 would fail `make up` and restarts while it is away): said in the body, not the status.
    const registry = this.registryFailingSince;
    return {
      ok: this.running && since.length === 0 && !this.stopping,
      consuming: this.running,
      topics: this.topics,
      warehouse: since.length === 0 ? 'ok' : `failing since ${new Date(Math.min(...since)).toISOString()}`,
      registry: registry === null ? 'ok' : `unreachable since ${new Date(registry).toISOString()}`,
      lastBatchAt: this.lastBatchAt,
    };
  }

  /** SIGTERM: stop fetching, write (or give up, rolled back) what was taken, then leave. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // What the lanes wrote reaches Kafka's committed offsets before the consumer leaves; a broker
    // that does not answer does not hold up the shutdown (kafkajs would retry for half a minute).
    await Promise.race([this.commitToKafka(), sleep(2000)]);
    await this.consumer?.disconnect().catch((err) => this.log.warn('consumer disconnect failed', { error: err }));
    await this.admin?.disconnect().catch(() => undefined);
    await Promise.all(this.lanes.map((lane) => lane.drain()));
    this.running = false;
  }
}

function roundAll(phases: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v * 10) / 10]));
}
