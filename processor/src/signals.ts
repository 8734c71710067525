// Debezium signals through Kafka: an incremental snapshot of tables, asked of a connector.
// Format (Debezium 3.6 KafkaSignalChannel): the record key must equal the connector's
// topic.prefix (its "logical name", other keys are ignored), the value is JSON with `id`,
// `type` and `data`; only partition 0 of the signal topic is read.
import * as crypto from 'crypto';
import type { Kafka, Producer } from 'kafkajs';

export interface SignalMessage {
  key: string;
  value: string;
}

/** A table as a signal's data collection: Debezium parses it as a table identifier, and a name
 *  that is not a plain one (`Weird Things`) fails unquoted ("Unable to parse table identifier …
 *  Skipping it", and no snapshot), so such parts are double-quoted. */
export function dataCollection(schema: string, table: string): string {
  const part = (p: string) => (/^[A-Za-z_][A-Za-z0-9_$]*$/.test(p) ? p : `"${p.replace(/"/g, '""')}"`);
  return `${part(schema)}.${part(table)}`;
}

/** `execute-snapshot` of type incremental for `schema.table` names. */
export function snapshotSignal(prefix: string, dataCollections: string[], id: string = crypto.randomUUID()): SignalMessage {
  return {
    key: prefix,
    value: JSON.stringify({ id, type: 'execute-snapshot', data: { 'data-collections': dataCollections, type: 'incremental' } }),
  };
}

/** Sends signals to connectors' signal topics (made, with one partition, if missing). */
export class SignalSender {
  private producer: Producer | null = null;
  private readonly ensured = new Set<string>();

  constructor(private readonly kafka: Kafka) {}

  async send(topic: string, message: SignalMessage): Promise<void> {
    if (!this.ensured.has(topic)) {
      const admin = this.kafka.admin();
      await admin.connect();
      try {
        if (!(await admin.listTopics()).includes(topic)) {
          await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
        }
      } finally {
        await admin.disconnect();
      }
      this.ensured.add(topic);
    }
    if (!this.producer) {
      const p = this.kafka.producer({ allowAutoTopicCreation: false });
      await p.connect();
      this.producer = p;
    }
    await this.producer.send({ topic, acks: -1, messages: [{ key: message.key, value: message.value, partition: 0 }] });
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = null;
  }
}
