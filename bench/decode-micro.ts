// Micro-benchmark of the processor's own CPU per change: real change events read from the
// stack's topic, decoded again and again by one Decoder (processor/src/decode.ts), then
// validated and turned into COPY text (validate.ts, stage.ts) in batches, as the writer does.
//
//   bash infra/with-env.sh node dist/bench/decode-micro.js [messages=20000] [rounds=15]
//
// Prints CPU µs per event for each round and their median: run it before and after a change,
// back to back (the machine's other work moves every figure).
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { kafkaClient } from '../processor/src/kafka-options';
import { Decoder, type ChangeEvent } from '../processor/src/decode';
import { validate } from '../processor/src/validate';
import { stageText, type StagedEvent } from '../processor/src/stage';
import { loadConfig } from '../processor/src/config';
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
  // One pass to warm the decoder up, count the kinds and keep the events for the staging rounds.
  const kinds = new Map<string, number>();
  const staged: StagedEvent[] = [];
  for (const [i, m] of messages.entries()) {
    const d = await decoder.decode(TOPIC, m.key, m.value);
    kinds.set(d.kind, (kinds.get(d.kind) ?? 0) + 1);
    if (d.kind === 'event') staged.push({ event: d.event, topic: TOPIC, partition: 0, offset: BigInt(i), key: m.key, value: m.value });
  }
  console.log(`${messages.length} messages: ${[...kinds].map(([k, v]) => `${v} ${k}`).join(', ')}`);
  report('decode', await rounds_(rounds, messages.length, async () => {
    for (const m of messages) await decoder.decode(TOPIC, m.key, m.value);
  }));

  // The writer's staging of the same events: validation rules as configured, then COPY text in
  // batches of 5,000 (the columns of the events' own schema).
  const { rules } = loadConfig({ ...process.env, WAREHOUSE_DATABASE_URL: process.env.WAREHOUSE_DATABASE_URL || 'postgres://x@127.0.0.1/x' });
  if (staged.length) {
    const columns = staged[staged.length - 1].event.model.columns.map((c) => c.name);
    report('validate + stage', await rounds_(rounds, staged.length, async () => {
      for (let i = 0; i < staged.length; i += 5000) {
        const batch = staged.slice(i, i + 5000).filter((e) => validate(e.event as ChangeEvent, rules) === null);
        stageText(batch, columns);
      }
    }));
  }
}

/** CPU µs per item of each round. CPU time, not wall time: the machine is shared, and GC threads
 *  count as cost too. */
async function rounds_(rounds: number, items: number, run: () => Promise<void>): Promise<number[]> {
  const perItem: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    await run();
    const c = process.cpuUsage(c0);
    perItem.push((c.user + c.system) / items);
  }
  return perItem;
}

function report(what: string, perItem: number[]): void {
  const sorted = [...perItem].sort((a, b) => a - b);
  console.log(`${what}: CPU µs/event per round: ${perItem.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`${what}: median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} µs/event, best ${sorted[0].toFixed(2)}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
