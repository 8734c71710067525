// Micro-benchmark of the decode path (processor/src/decode.ts): real change events read from
// the stack's topic, decoded again and again by one Decoder, as the processor does.
//
//   bash infra/with-env.sh node dist/bench/decode-micro.js [messages=20000] [rounds=15]
//
// Prints CPU µs per event for each round and their median: run it before and after a change,
// back to back (the machine's other work moves every figure).
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { kafkaClient } from '../processor/src/kafka-options';
import { Decoder } from '../processor/src/decode';
import { RegistrySchemas } from '../processor/src/registry';
import { credentialsFromEnv } from '../processor/src/rest-auth';
import { TOPIC } from './lib/systems';
import { sleep } from './lib/util';

async function readMessages(brokers: string[], n: number): Promise<KafkaMessage[]> {
  const kafka = kafkaClient({ clientId: 'cdc-decode-micro', brokers, logLevel: logLevel.NOTHING });
  const groupId = `cdc-decode-micro-${Date.now()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const out: KafkaMessage[] = [];
  let last = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) if (out.length < n && m.value) out.push(m);
        last = Date.now();
      },
    });
    // Until n messages, or nothing more came for 3 s (the topic holds fewer).
    while (out.length < n && Date.now() - last < 3000) await sleep(100);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect().then(() => admin.deleteGroups([groupId])).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
  return out;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20000);
  const rounds = Number(process.argv[3] ?? 15);
  const brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '').split(',');
  const registry = process.env.SCHEMA_REGISTRY_URL;
  if (!brokers[0] || !registry) throw new Error('KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL must be set: run through bash infra/with-env.sh');
  const messages = await readMessages(brokers, n);
  if (messages.length === 0) throw new Error(`no message in ${TOPIC}: load some changes first (make load)`);
  const decoder = new Decoder(new RegistrySchemas(registry, { auth: credentialsFromEnv(process.env, 'SCHEMA_REGISTRY') }));
  const kinds = new Map<string, number>();
  for (const m of messages) {
    const d = await decoder.decode(TOPIC, m.key, m.value);
    kinds.set(d.kind, (kinds.get(d.kind) ?? 0) + 1);
  }
  console.log(`${messages.length} messages: ${[...kinds].map(([k, v]) => `${v} ${k}`).join(', ')}`);
  const perEvent: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // CPU time, not wall time: the machine is shared, and GC threads count as cost too.
    const c0 = process.cpuUsage();
    for (const m of messages) await decoder.decode(TOPIC, m.key, m.value);
    const c = process.cpuUsage(c0);
    perEvent.push((c.user + c.system) / messages.length);
  }
  const sorted = [...perEvent].sort((a, b) => a - b);
  console.log(`CPU µs/event per round: ${perEvent.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} µs/event, best ${sorted[0].toFixed(2)}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
