// A quick look at the freshness of the running stack, leg by leg, at one fixed rate: for tuning
// the capture leg without a whole `make bench` (which stops the stack's processor and runs four
// systems at once). Needs a stack of its own: it writes to `orders` and adds a trigger to the
// warehouse's `orders_fact` and `cdc.consistency` for the run (removed afterwards).
//
//   bash infra/with-env.sh node dist/bench/capture-probe.js [rate=1000] [seconds=20]
//
// Per change event (inserts and updates), from the source commit (Debezium's source.ts_us):
//   → Kafka: the record's timestamp, set by Connect's producer when Debezium hands it over;
//   → consumer: when a kafkajs consumer in this process received it (PROBE_MAX_WAIT_MS,
//     PROBE_MIN_BYTES: its fetch settings, to compare with the processor's);
//   → batch: when the stack's processor's transaction that appended it to orders_fact ended
//     (a statement trigger on orders_fact);
//   → visible: when it reached orders_latest. APPLY_MODE=event: with its batch. Whole-transaction
//     apply (the default): the first watermark step whose consistent_through reached its commit
//     time (a statement trigger on cdc.consistency, as `make bench` does for ours).
import { spawn } from 'child_process';
import * as path from 'path';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClient } from '../processor/src/kafka-options';
import { Decoder } from '../processor/src/decode';
import { RegistrySchemas } from '../processor/src/registry';
import { credentialsFromEnv } from '../processor/src/rest-auth';
import { TOPIC } from './lib/systems';
import { connect, log, quantile, sleep, waitFor } from './lib/util';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run through bash infra/with-env.sh`);
  return v;
}

interface Seen { commitUs: bigint; kafkaMs: number; receivedMs: number; partition: number; offset: string }

function percentiles(values: number[]): string {
  const s = Float64Array.from(values).sort();
  const f = (q: number) => quantile(s, q).toFixed(1).padStart(7);
  return `p50 ${f(0.5)}  p95 ${f(0.95)}  p99 ${f(0.99)}  ms (n=${values.length})`;
}

async function main(): Promise<void> {
  const rate = Number(process.argv[2] ?? 1000);
  const seconds = Number(process.argv[3] ?? 20);
  const brokers = need('KAFKA_BOOTSTRAP_SERVERS').split(',');
  const decoder = new Decoder(new RegistrySchemas(need('SCHEMA_REGISTRY_URL'), { auth: credentialsFromEnv(process.env, 'SCHEMA_REGISTRY') }));
  const wh = await connect(need('WAREHOUSE_ADMIN_URL'), 'cdc-capture-probe');
  await wh.query(`
    CREATE SCHEMA IF NOT EXISTS probe;
    CREATE UNLOGGED TABLE IF NOT EXISTS probe.tx_arrival (xid bigint PRIMARY KEY, at timestamptz NOT NULL);
    TRUNCATE probe.tx_arrival;
    CREATE OR REPLACE FUNCTION probe.note_tx() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
    BEGIN
      INSERT INTO probe.tx_arrival VALUES (txid_current() % 4294967296, clock_timestamp()) ON CONFLICT (xid) DO UPDATE SET at = EXCLUDED.at;
      RETURN NULL;
    END $$;
    CREATE UNLOGGED TABLE IF NOT EXISTS probe.visible (through timestamptz PRIMARY KEY, at timestamptz NOT NULL);
    TRUNCATE probe.visible;
    CREATE OR REPLACE FUNCTION probe.note_visible() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
    BEGIN
      INSERT INTO probe.visible SELECT max(consistent_through), clock_timestamp() FROM moved WHERE consistent_through IS NOT NULL HAVING max(consistent_through) IS NOT NULL
      ON CONFLICT (through) DO NOTHING;
      RETURN NULL;
    END $$;
    DROP TRIGGER IF EXISTS probe_arrival ON public.orders_fact;
    CREATE TRIGGER probe_arrival AFTER INSERT ON public.orders_fact FOR EACH STATEMENT EXECUTE FUNCTION probe.note_tx();
    DROP TRIGGER IF EXISTS probe_visible ON cdc.consistency;
    CREATE TRIGGER probe_visible AFTER UPDATE ON cdc.consistency REFERENCING NEW TABLE AS moved FOR EACH STATEMENT EXECUTE FUNCTION probe.note_visible();`);

  // The stack's processor defers in-transaction changes to the watermark unless APPLY_MODE=event.
  const transactionMode = (process.env.APPLY_MODE ?? 'transaction') === 'transaction';
  const seen: Seen[] = [];
  const kafka = kafkaClient({ clientId: 'cdc-capture-probe', brokers, logLevel: logLevel.NOTHING });
  const groupId = `cdc-capture-probe-${Date.now()}`;
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: Number(process.env.PROBE_MAX_WAIT_MS ?? 250),
    minBytes: Number(process.env.PROBE_MIN_BYTES ?? 1),
  });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: false });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const receivedMs = Date.now();
      for (const m of batch.messages) {
        const d = await decoder.decode(batch.topic, m.key, m.value);
        if (d.kind !== 'event' || (d.event.op !== 'c' && d.event.op !== 'u')) continue;
        seen.push({ commitUs: d.event.sourceTsMicros, kafkaMs: Number(m.timestamp), receivedMs, partition: batch.partition, offset: m.offset });
      }
    },
  });
  try {
    if (!(await waitFor(async () => joined, 30_000, 100))) throw new Error('the probe consumer did not join its group');
    await sleep(1000); // its first fetch is in flight: nothing of the run is missed
    // The load generator (`make load`'s) runs in a process of its own: in this one, its work
    // would delay the consumer's receipt of the events and blur that leg.
    const load = (r: number, s: number) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(__dirname, '../seed/load.js'), '--rate', String(r), '--duration', String(s)], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the load generator failed: ${err}`))));
      });
    await load(200, 2);
    await sleep(2000);
    seen.length = 0;
    const t0 = Date.now();
    log(`loading ${rate} changes/s for ${seconds} s`);
    await load(rate, seconds);
    // Until nothing more arrives for 3 s.
    let count = -1;
    await waitFor(async () => {
      const done = seen.length === count;
      count = seen.length;
      return done;
    }, 120_000, 3000);
    const expected = seen.length;
    const t1 = Date.now();
    log(`${seen.length} inserts and updates received; load average ${require('os').loadavg().map((x: number) => x.toFixed(2)).join(' ')}`);

    // The processor's arrivals: orders_fact rows of this run, by partition and offset; visible
    // with the batch in event mode (no step reached it), else with the first step past it.
    const arrivals = new Map<string, { batch: number; visible: number | null }>();
    await waitFor(async () => {
      const r = await wh.query({
        text: `SELECT f.kafka_partition, f.kafka_offset::text, extract(epoch FROM t.at) * 1000,
                      extract(epoch FROM (SELECT v.at FROM probe.visible v WHERE v.through >= f.source_ts ORDER BY v.through LIMIT 1)) * 1000
               FROM public.orders_fact f JOIN probe.tx_arrival t ON t.xid = f.xmin::text::bigint
               WHERE f.op IN ('c', 'u') AND f.updated_at >= to_timestamp($1 / 1000.0) - interval '1 s'`,
        values: [t0],
        rowMode: 'array',
      });
      for (const [p, o, at, vis] of r.rows) arrivals.set(`${p}/${o}`, { batch: Number(at), visible: vis === null ? null : Number(vis) });
      return arrivals.size >= expected && [...arrivals.values()].every((a) => a.visible !== null || !transactionMode);
    }, 60_000, 500);

    const capture: number[] = [];
    const toConsumer: number[] = [];
    const kafkaToConsumer: number[] = [];
    const toBatch: number[] = [];
    const batchToVisible: number[] = [];
    const toVisible: number[] = [];
    const processorLeg: number[] = [];
    for (const s of seen) {
      const commitMs = Number(s.commitUs) / 1000;
      capture.push(s.kafkaMs - commitMs);
      toConsumer.push(s.receivedMs - commitMs);
      kafkaToConsumer.push(s.receivedMs - s.kafkaMs);
      const a = arrivals.get(`${s.partition}/${s.offset}`);
      if (a === undefined) continue;
      const visible = a.visible ?? a.batch;
      toBatch.push(a.batch - s.kafkaMs);
      batchToVisible.push(Math.max(0, visible - a.batch));
      toVisible.push(visible - commitMs);
      processorLeg.push(visible - s.kafkaMs);
    }
    log(`commit → Kafka timestamp     ${percentiles(capture)}`);
    log(`Kafka timestamp → consumer   ${percentiles(kafkaToConsumer)}`);
    log(`commit → consumer            ${percentiles(toConsumer)}`);
    log(`Kafka timestamp → batch      ${percentiles(toBatch)}   (the processor's batch that appended it committed)`);
    log(`batch → visible              ${percentiles(batchToVisible)}   (${transactionMode ? 'the watermark step that passed its transaction' : 'event mode: with the batch'})`);
    log(`Kafka timestamp → visible    ${percentiles(processorLeg)}`);
    log(`commit → visible             ${percentiles(toVisible)}`);
    log(`(${((t1 - t0) / 1000).toFixed(1)} s)`);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect().then(() => admin.deleteGroups([groupId])).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await wh.query('DROP TRIGGER IF EXISTS probe_arrival ON public.orders_fact; DROP TRIGGER IF EXISTS probe_visible ON cdc.consistency; DROP SCHEMA IF EXISTS probe CASCADE').catch(() => undefined);
    await wh.end();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
