// make status on a cluster: the brokers, every topic's partition leaders and in-sync replicas, and
// which member of the processors' consumer group holds which partitions.
// usage: node infra/cluster-status.js BOOTSTRAP GROUP [--json]
'use strict';
const { logLevel, AssignerProtocol } = require('kafkajs');
// Security (KAFKA_SSL, KAFKA_SASL_*: make env) from the processor's own options module, built by make up.
const { kafkaClient } = require('../dist/processor/src/kafka-options');

// Topics with many partitions (Connect's offsets topic has 25) are summed up in one line.
const DETAIL_MAX_PARTITIONS = 4;

async function main() {
  const [bootstrap, group, flag] = process.argv.slice(2);
  const kafka = kafkaClient({ clientId: 'cdc-status', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING, connectionTimeout: 3000, requestTimeout: 10000, retry: { retries: 2 } });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const cluster = await admin.describeCluster();
    const names = (await admin.listTopics()).filter((t) => t !== '__consumer_offsets').sort();
    const { topics } = await admin.fetchTopicMetadata({ topics: names });
    const groups = (await admin.describeGroups([group])).groups;
    const members = (groups[0]?.members ?? []).map((m) => {
      let assignment = {};
      try { assignment = AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {}; } catch { /* not a consumer protocol member */ }
      return { clientId: m.clientId, host: m.clientHost, assignment };
    });
    const report = {
      brokers: cluster.brokers.map((b) => ({ id: b.nodeId, address: `${b.host}:${b.port}` })).sort((a, b) => a.id - b.id),
      topics: topics.sort((a, b) => a.name.localeCompare(b.name)).map((t) => ({
        name: t.name,
        partitions: t.partitions.sort((a, b) => a.partitionId - b.partitionId)
          .map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr })),
      })),
      group: { id: group, state: groups[0]?.state ?? 'Unknown', members },
    };
    if (flag === '--json') { console.log(JSON.stringify(report)); return; }
    console.log(`kafka brokers in the cluster: ${report.brokers.map((b) => `${b.id}@${b.address}`).join(', ')}`);
    for (const t of report.topics) {
      const under = t.partitions.filter((p) => p.isr.length < p.replicas.length).length;
      if (t.partitions.length > DETAIL_MAX_PARTITIONS) {
        const perLeader = {};
        for (const p of t.partitions) perLeader[p.leader] = (perLeader[p.leader] ?? 0) + 1;
        const leaders = Object.entries(perLeader).map(([b, n]) => `broker ${b}: ${n}`).join(', ');
        console.log(`  topic ${t.name}: ${t.partitions.length} partitions, replicas ${t.partitions[0].replicas.length}, leaders ${leaders}${under ? `, ${under} UNDER-REPLICATED` : ''}`);
      } else {
        for (const p of t.partitions) {
          console.log(`  topic ${t.name}[${p.partition}]: leader ${p.leader}, replicas [${p.replicas.join(',')}], isr [${p.isr.join(',')}]${p.isr.length < p.replicas.length ? ' UNDER-REPLICATED' : ''}`);
        }
      }
    }
    console.log(`processor group ${group}: ${report.group.state}, ${members.length} member(s)`);
    for (const m of members) {
      const parts = Object.entries(m.assignment).map(([t, ps]) => `${t}[${ps.sort((a, b) => a - b).join(',')}]`).join(' ');
      console.log(`  ${m.clientId} (${m.host}): ${parts || 'no partitions'}`);
    }
  } finally {
    await admin.disconnect();
  }
}
main().catch((e) => { console.error(`cluster status: ${e.message || e}`); process.exit(1); });
