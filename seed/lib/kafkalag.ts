// How far the processor is behind the topic: its stored offsets (cdc.offsets, written with
// the rows) against the topic's high watermarks. The warehouse, not Kafka's consumer-group
// offsets, is where the processor records progress, so that is what is compared.
import { Client } from 'pg';
import { Admin, Kafka, logLevel } from 'kafkajs';
import { kafkaClient } from '../../processor/src/kafka-options';
import { ConfigError } from './cli';
import { errText } from './db';

export interface Watermark {
  partition: number;
  low: bigint;
  high: bigint;
}

export interface PartitionLag {
  partition: number;
  high: bigint;
  /** Next offset the processor will consume; null if it has stored none for this partition. */
  next: bigint | null;
  lag: bigint;
}

export function computeLag(watermarks: readonly Watermark[], stored: ReadonlyMap<number, bigint>): { total: bigint; partitions: PartitionLag[] } {
  const partitions = watermarks
    .map(({ partition, low, high }) => {
      const next = stored.get(partition) ?? null;
      // Nothing stored yet: everything still retained in the partition is pending.
      const from = next ?? low;
      return { partition, high, next, lag: high > from ? high - from : 0n };
    })
    .sort((a, b) => a.partition - b.partition);
  return { total: partitions.reduce((s, p) => s + p.lag, 0n), partitions };
}

export type LagState =
  | { kind: 'lag'; total: bigint; partitions: PartitionLag[] }
  | { kind: 'no-topic' }
  /** Kafka stopped answering after verify had connected: keep waiting, report it if it lasts. */
  | { kind: 'error'; message: string };

export class LagProbe {
  private constructor(
    private readonly admin: Admin,
    private readonly topic: string,
    private readonly group: string,
  ) {}

  static async connect(brokers: string[], topic: string, group: string): Promise<LagProbe> {
    // kafkajs logs every retry at ERROR level; failures are reported here as one line instead.
    const kafka = kafkaClient({ clientId: 'cdc-verify', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 3000, requestTimeout: 10_000, retry: { retries: 2 } });
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.listTopics();
    } catch (e) {
      await admin.disconnect().catch(() => undefined);
      throw new ConfigError(`cannot reach Kafka at ${brokers.join(',')}: ${errText(e)}`);
    }
    return new LagProbe(admin, topic, group);
  }

  async probe(warehouse: Client): Promise<LagState> {
    // Stored offsets first, watermarks second: anything the processor consumes in between can
    // only make the lag look larger, never hide events that are still unconsumed.
    const stored = await readStoredOffsets(warehouse, this.group, this.topic);
    let offsets: Awaited<ReturnType<Admin['fetchTopicOffsets']>>;
    try {
      const topics = await this.admin.listTopics();
      if (!topics.includes(this.topic)) return { kind: 'no-topic' };
      offsets = await this.admin.fetchTopicOffsets(this.topic);
    } catch (e) {
      return { kind: 'error', message: errText(e) };
    }
    const lag = computeLag(
      offsets.map((o) => ({ partition: o.partition, low: BigInt(o.low), high: BigInt(o.high) })),
      stored,
    );
    return { kind: 'lag', ...lag };
  }

  async close(): Promise<void> {
    await this.admin.disconnect().catch(() => undefined);
  }
}

export async function readStoredOffsets(client: Client, group: string, topic: string): Promise<Map<number, bigint>> {
  const r = await client.query<{ partition: number; next_offset: string }>(
    'SELECT partition, next_offset::text AS next_offset FROM cdc.offsets WHERE consumer_group = $1 AND topic = $2',
    [group, topic],
  );
  return new Map(r.rows.map((row) => [row.partition, BigInt(row.next_offset)]));
}
