// Debezium's TRUNCATE as it really arrives (skipped.operations=none): read from Kafka and decoded
// by the processor's Decoder through the real registry. Debezium sends it without a key, so it
// must not be mistaken for a change of a table without a primary key.
import { Kafka, logLevel } from 'kafkajs';
import { Decoder, type Decoded } from '../processor/src/decode';
import { RegistrySchemas } from '../processor/src/registry';
import { setHomePrefix } from '../processor/src/topics';
import { closeAll, registryAuth, source, sourceAdmin, stackEnv, stackKafka, waitFor } from './lib/stack';
import { deleteTopics, registerConnector, removeCapture } from './lib/processes';

const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
const table = `e2e_trunc_${suffix}`;
const prefix = `e2etrunc${suffix}`;
const connector = `e2e-trunc-${suffix}`;
const slot = `e2etrunc_slot_${suffix}`;
const publication = `e2etrunc_pub_${suffix}`;
const topic = `${prefix}.public.${table}`;
let registered = false;

afterAll(async () => {
  await removeCapture({ connector: registered ? connector : undefined, slot, publication });
  await source().query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  await deleteTopics([topic, `__debezium-heartbeat.${prefix}`]);
  await closeAll();
});

it('decodes a TRUNCATE into its table and position in the log, between the rows before and after it', async () => {
  await source().query(`CREATE TABLE ${table} (id integer PRIMARY KEY, amount numeric(12,2))`);
  await source().query(`INSERT INTO ${table} VALUES (1, 1.10)`); // arrives through the snapshot
  await sourceAdmin().query(`GRANT SELECT ON ${table} TO debezium`);
  await source().query(`CREATE PUBLICATION ${publication} FOR TABLE ${table}`);
  await registerConnector(connector, {
    'topic.prefix': prefix,
    'table.include.list': `public.${table}`,
    'publication.name': publication,
    'publication.autocreate.mode': 'disabled',
    'slot.name': slot,
    'snapshot.mode': 'initial',
    'skipped.operations': 'none',
  });
  registered = true;

  setHomePrefix(prefix); // the table keeps its plain name, as for a processor with WAREHOUSE_HOME_PREFIX set
  const decoder = new Decoder(new RegistrySchemas(stackEnv().SCHEMA_REGISTRY_URL, { auth: registryAuth() }));
  const seen: { key: Buffer | null; decoded: Decoded }[] = [];
  const kafka = stackKafka('e2e-truncate');
  const consumer = kafka.consumer({ groupId: `e2e-truncate-${suffix}` });
  try {
    await consumer.connect();
    await waitFor(`topic ${topic}`, async () => {
      const admin = kafka.admin();
      await admin.connect();
      try { return (await admin.listTopics()).includes(topic); } finally { await admin.disconnect(); }
    }, 60_000, 500);
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push({ key: message.key, decoded: await decoder.decode(topic, message.key, message.value) });
      },
    });
    // The TRUNCATE only once the snapshot has read row 1: TRUNCATE is not MVCC-safe, so a
    // snapshot still to read the table (from the slot's exported snapshot) would find it empty.
    await waitFor('the snapshot read of row 1', async () => seen.some((s) => s.decoded.kind === 'event' && s.decoded.event.op === 'r'), 90_000, 200);
    await source().query(`TRUNCATE ${table}`);
    await source().query(`INSERT INTO ${table} VALUES (2, 2.20)`);
    // Both: the keyless TRUNCATE may sit on the other partition than row 2, read independently.
    await waitFor('the truncate and the insert after it', async () =>
      seen.some((s) => s.decoded.kind === 'truncate') && seen.some((s) => s.decoded.kind === 'event' && s.decoded.event.row.id === 2), 90_000, 200);
  } finally {
    await consumer.disconnect();
  }

  // The truncate has no key, so it lands on any partition: the log order is the LSN order.
  const lsnOf = (d: Decoded) => (d.kind === 'event' ? d.event.lsn ?? 0n : d.kind === 'truncate' ? d.lsn : 0n);
  seen.sort((a, b) => (lsnOf(a.decoded) < lsnOf(b.decoded) ? -1 : lsnOf(a.decoded) > lsnOf(b.decoded) ? 1 : 0));
  const kinds = seen.map((s) => (s.decoded.kind === 'event' ? `${s.decoded.event.op}:${s.decoded.event.row.id}` : s.decoded.kind));
  expect(kinds).toEqual(['r:1', 'truncate', 'c:2']);
  const t = seen[1];
  expect(t.key).toBeNull();
  if (t.decoded.kind !== 'truncate' || seen[0].decoded.kind !== 'event' || seen[2].decoded.kind !== 'event') throw new Error('unexpected kinds');
  expect(t.decoded.table).toBe(table);
  expect(t.decoded.lsn).toBeGreaterThan(seen[0].decoded.event.lsn!);
  expect(t.decoded.lsn).toBeLessThan(seen[2].decoded.event.lsn!);
  expect(typeof t.decoded.txId).toBe('bigint');
  expect(t.decoded.sourceTsMicros).toBeGreaterThan(1_700_000_000_000_000n);
});
