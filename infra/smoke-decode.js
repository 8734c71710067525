#!/usr/bin/env node
// End-to-end smoke check of the upstream half of the pipeline: inserts one order into the source,
// reads its Debezium event from Kafka and decodes key and value with
// @kafkajs/confluent-schema-registry through Apicurio's Confluent-compatible API.
// Exits 0 if the event carries the amount exactly, 1 otherwise.
//
//   bash infra/with-env.sh node infra/smoke-decode.js [AMOUNT]      (default 999.99)
//
// Needs SOURCE_DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL (make env).
'use strict';
const crypto = require('crypto');
const { logLevel } = require('kafkajs');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');
const { Client } = require('pg');

const TOPIC = process.env.SMOKE_TOPIC || 'dbserver1.public.orders';
const TIMEOUT_MS = Number(process.env.SMOKE_TIMEOUT_MS || 30000);

// The processor's own Avro options: longs as BigInt (Debezium's source.ts_ns does not fit a JS
// number; without them the client refuses every message with "potential precision loss") and
// decimals as exact strings. Built by `make up` (npm run build).
const { avroOptions } = require('../dist/processor/src/avro');
// Security (KAFKA_SSL, KAFKA_SASL_*: make env) from the processor's own options module, built by make up.
const { kafkaClient } = require('../dist/processor/src/kafka-options');

const json = (v) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2);

async function main() {
  for (const k of ['SOURCE_DATABASE_URL', 'KAFKA_BOOTSTRAP_SERVERS', 'SCHEMA_REGISTRY_URL']) {
    if (!process.env[k]) throw new Error(`${k} is not set: run as  bash infra/with-env.sh node infra/smoke-decode.js`);
  }
  const amount = process.argv[2] || '999.99';
  const marker = `smoke-${crypto.randomBytes(6).toString('hex')}`;
  // SECURITY=on: the registry's read-only user (make env), through the client's own auth option.
  const auth = process.env.SCHEMA_REGISTRY_USERNAME
    ? { username: process.env.SCHEMA_REGISTRY_USERNAME, password: process.env.SCHEMA_REGISTRY_PASSWORD || '' } : undefined;
  const registry = new SchemaRegistry({ host: process.env.SCHEMA_REGISTRY_URL, auth }, { [SchemaType.AVRO]: avroOptions });
  const kafka = kafkaClient({ clientId: 'cdc-smoke', brokers: process.env.KAFKA_BOOTSTRAP_SERVERS.split(','), logLevel: logLevel.NOTHING });

  // Start reading at the current end of every partition, then insert.
  const admin = kafka.admin();
  await admin.connect();
  const start = await admin.fetchTopicOffsets(TOPIC);
  await admin.disconnect();

  const consumer = kafka.consumer({ groupId: `cdc-smoke-${marker}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [TOPIC] });
  let done;
  const found = new Promise((resolve, reject) => {
    done = resolve;
    setTimeout(() => reject(new Error(`no event for ${marker} on ${TOPIC} within ${TIMEOUT_MS} ms`)), TIMEOUT_MS).unref();
  });
  let seeked = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (seeked) return;
    seeked = true;
    for (const p of start) consumer.seek({ topic: TOPIC, partition: p.partition, offset: p.offset });
  });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      if (!message.value) return; // tombstone
      const value = await registry.decode(message.value);
      if (!value.after || value.after.product_name !== marker) return;
      const key = await registry.decode(message.key);
      done({ partition, offset: message.offset, key, value, schemaId: message.value.readInt32BE(1) });
    },
  });

  const pg = new Client({ connectionString: process.env.SOURCE_DATABASE_URL });
  await pg.connect();
  const t0 = Date.now();
  const { rows } = await pg.query(
    'INSERT INTO orders(customer_id, product_name, amount, status) VALUES ($1, $2, $3, $4) RETURNING order_id',
    [1, marker, amount, 'pending'],
  );
  await pg.end();

  let ev;
  try {
    ev = await found;
  } finally {
    await consumer.disconnect();
  }
  const ms = Date.now() - t0;
  console.log(json({ partition: ev.partition, offset: ev.offset, schemaId: ev.schemaId, key: ev.key, op: ev.value.op, after: ev.value.after }));
  const ok = ev.value.op === 'c' && ev.value.after.amount === amount && String(ev.key.order_id) === String(rows[0].order_id);
  console.log(`${ok ? 'OK' : 'MISMATCH'}: order ${rows[0].order_id} amount ${ev.value.after.amount} (inserted ${amount}), insert -> decoded in ${ms} ms`);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.error(`smoke-decode failed: ${e.message || e}`); process.exit(1); });
