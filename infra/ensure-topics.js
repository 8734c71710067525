// Creates Kafka topics that must exist before consumers subscribe (idempotent).
// Debezium creates a table's topic only with its first event; an empty table would leave
// consumers subscribing to a topic that does not exist yet.
// usage: node infra/ensure-topics.js BOOTSTRAP PARTITIONS TOPIC...
'use strict';
const { logLevel } = require('kafkajs');
// Security (KAFKA_SSL, KAFKA_SASL_*: make env) from the processor's own options module, built by make up.
const { kafkaClient } = require('../dist/processor/src/kafka-options');

async function main() {
  const [bootstrap, partitions, ...topics] = process.argv.slice(2);
  const kafka = kafkaClient({ clientId: 'cdc-infra', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    // Right after a broker start (and while Connect creates its own topics) the leader wait can
    // fail with a retriable error although the topic was created: look again before retrying.
    for (let attempt = 1; ; attempt++) {
      const left = missing.filter((t) => !existing.has(t));
      if (!left.length) break;
      try {
        await admin.createTopics({
          waitForLeaders: true,
          // Replicas: the brokers' default.replication.factor (1 on one broker, 3 in a cluster).
          topics: left.map((topic) => ({ topic, numPartitions: Number(partitions), replicationFactor: -1 })),
        });
        left.forEach((t) => existing.add(t));
      } catch (err) {
        if (attempt >= 10 || err.retriable === false) throw err;
        await new Promise((r) => setTimeout(r, 500));
        for (const t of await admin.listTopics()) existing.add(t);
      }
    }
    console.log(missing.length ? `created ${missing.join(', ')}` : 'all exist');
  } finally {
    await admin.disconnect();
  }
}
main().catch((e) => { console.error(e.message || e); process.exit(1); });
