// After bench/run.sh restarts Kafka Connect (to load the JDBC sink plugin): waits until the
// Debezium source connector runs again, and repairs one known failure on the way.
//
// With lsn.flush.mode=connector_and_driver the pgjdbc driver advances the replication slot over
// WAL that carries no captured change (autovacuum, other tables), while the connector's stored
// offset stays at its last event. At the next start Debezium then finds its offset behind the
// slot and fails ("... is no longer available on the server"). Nothing was lost: the slot only
// moved over WAL without changes of the captured table. The repair is what Debezium's
// `offset.mismatch.strategy=trust_slot` would do: the connector is stopped, its offset moved to
// the slot's confirmed position (Kafka Connect's offsets API), and resumed.
// Usage: node dist/bench/source-guard.js   (environment of infra/with-env.sh; CONNECTOR_NAME optional)
import { ConnectRest, connect, log, waitFor } from './lib/util';

async function main(): Promise<void> {
  const name = process.env.CONNECTOR_NAME || 'orders-source';
  const slot = process.env.DEBEZIUM_SLOT || 'debezium_orders';
  const rest = new ConnectRest(process.env.CONNECT_URL!);
  const state = async () => {
    const r = await rest.call('GET', `/connectors/${name}/status`);
    if (r.status !== 200) return { states: [] as string[], trace: '' };
    return {
      states: [r.json.connector.state, ...r.json.tasks.map((t: { state: string }) => t.state)] as string[],
      trace: r.json.tasks.map((t: { trace?: string }) => t.trace ?? '').join('\n') as string,
    };
  };
  // The task fails within a few seconds of its start, or runs.
  let s = await waitFor(async () => {
    const x = await state();
    return x.states.includes('FAILED') || (x.states.length > 1 && x.states.every((v) => v === 'RUNNING')) ? x : null;
  }, 90_000, 500);
  if (s && s.states.every((v) => v === 'RUNNING')) {
    // A failure at start shows after a moment: look again.
    await new Promise((r) => setTimeout(r, 3000));
    s = await state();
  }
  if (!s) throw new Error(`connector ${name} is neither RUNNING nor FAILED after 90 s`);
  if (!s.states.includes('FAILED')) return;
  if (!/no longer available on the server/.test(s.trace)) {
    throw new Error(`connector ${name} FAILED after the restart of Kafka Connect:\n${s.trace.slice(0, 1500)}`);
  }
  log(`connector ${name}: its stored offset is behind its replication slot ${slot} (the driver moved the slot over WAL without captured changes); moving the offset to the slot, as offset.mismatch.strategy=trust_slot would`);
  const src = await connect(process.env.SOURCE_ADMIN_URL!, 'cdc-bench-admin');
  try {
    await rest.must('PUT', `/connectors/${name}/stop`);
    await waitFor(async () => (await state()).states[0] === 'STOPPED', 60_000, 300);
    const lsn = (await src.query("SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint AS lsn FROM pg_replication_slots WHERE slot_name = $1", [slot])).rows[0]?.lsn;
    if (lsn === undefined) throw new Error(`replication slot ${slot} not found on the source`);
    const current = await rest.must('GET', `/connectors/${name}/offsets`);
    const offsets = current.offsets.map((o: { partition: unknown; offset: Record<string, unknown> }) => ({
      partition: o.partition,
      offset: { ...o.offset, lsn: Number(lsn), lsn_proc: Number(lsn), lsn_commit: Number(lsn) },
    }));
    await rest.must('PATCH', `/connectors/${name}/offsets`, { offsets });
    await rest.must('PUT', `/connectors/${name}/resume`);
    await rest.waitState(name, 'RUNNING');
    log(`connector ${name} RUNNING again from LSN ${lsn}; lasting fix: "offset.mismatch.strategy": "trust_slot" in connectors/${name}.json`);
  } finally {
    await src.end();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench: ${err?.message ?? err}\n`);
    process.exit(1);
  },
);
