// Integration tests that need Kafka: the stack's broker (make up), with topics of the test file's
// own, deleted after its tests.
import * as crypto from 'crypto';
import { logLevel, type Admin, type Kafka } from 'kafkajs';
import { kafkaClient } from '../../src/kafka-options';

export interface ScratchKafka {
  brokers: string[];
  kafka: Kafka;
  /** Connected before the file's tests, disconnected after them. */
  admin: Admin;
  /** A new topic of one partition holding `n` messages (keys `k<i>`, values `m<i>`). */
  topicWith(n: number): Promise<string>;
  /** Messages `from` (inclusive) to `to` (exclusive) appended to partition 0. */
  produce(topic: string, from: number, to: number): Promise<void>;
}

export function useScratchKafka(clientId: string): ScratchKafka {
  const brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '').split(',').filter(Boolean);
  const kafka = kafkaClient({ clientId, brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const topics: string[] = [];
  beforeAll(async () => {
    if (!brokers.length) throw new Error('KAFKA_BOOTSTRAP_SERVERS is not set: run through infra/with-env.sh');
    await admin.connect();
  });
  afterAll(async () => {
    if (topics.length) await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  });
  const produce = async (topic: string, from: number, to: number) => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: to - from }, (_, i) => ({ key: `k${from + i}`, value: `m${from + i}` })) });
    await producer.disconnect();
  };
  const topicWith = async (n: number) => {
    const topic = `${clientId}-${crypto.randomBytes(4).toString('hex')}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    topics.push(topic);
    await produce(topic, 0, n);
    return topic;
  };
  return { brokers, kafka, admin, topicWith, produce };
}
