// Prometheus metrics of the processor (GET /metrics).
import * as client from 'prom-client';
import type { SlotState } from './slots';

export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'cdc_processor_' });
  const m = {
    registry,
    consumed: new client.Counter({ name: 'cdc_events_consumed_total', help: 'Messages consumed from Kafka', labelNames: ['topic'], registers: [registry] }),
    written: new client.Counter({ name: 'cdc_events_written_total', help: 'Change events appended to <table>_fact', labelNames: ['table'], registers: [registry] }),
    duplicates: new client.Counter({ name: 'cdc_events_duplicate_total', help: 'Re-sent change events recognised and not written again', labelNames: ['table'], registers: [registry] }),
    rejected: new client.Counter({ name: 'cdc_events_rejected_total', help: 'Events sent to cdc.rejected_events', labelNames: ['table', 'stage'], registers: [registry] }),
    batchEvents: new client.Histogram({ name: 'cdc_batch_events', help: 'Messages per written batch', buckets: [1, 10, 100, 500, 1000, 5000, 10000, 50000], registers: [registry] }),
    batchSeconds: new client.Histogram({ name: 'cdc_batch_duration_seconds', help: 'Time to write one batch (one transaction)', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    freshness: new client.Histogram({ name: 'cdc_freshness_seconds', help: 'Source commit to warehouse commit, per change event', buckets: [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300], registers: [registry] }),
    lag: new client.Gauge({ name: 'cdc_consumer_lag', help: 'Messages behind the partition high watermark', labelNames: ['topic', 'partition'], registers: [registry] }),
    writeErrors: new client.Counter({ name: 'cdc_write_errors_total', help: 'Failed attempts to write a batch (retried)', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Per replication slot of the source (SOURCE_MONITOR_URL), read at scrape time, at most every 5 s. */
export function addSlotMetrics(m: Metrics, read: () => Promise<SlotState[]>, onError: (err: unknown) => void): void {
  let cached: { at: number; slots: Promise<SlotState[]> } | null = null;
  const slots = (): Promise<SlotState[]> => {
    if (!cached || Date.now() - cached.at > 5000) {
      const p = read().catch((err) => {
        onError(err);
        return [] as SlotState[];
      });
      cached = { at: Date.now(), slots: p };
    }
    return cached.slots;
  };
  const gauge = (name: string, help: string, value: (s: SlotState) => number | null) =>
    new client.Gauge({
      name, help, labelNames: ['slot'], registers: [m.registry],
      async collect() {
        this.reset();
        for (const s of await slots()) {
          const v = value(s);
          if (v !== null) this.set({ slot: s.slot }, v);
        }
      },
    });
  gauge('cdc_source_slot_active', 'Replication slot in use by a connector (1) or not (0)', (s) => (s.active ? 1 : 0));
  gauge('cdc_source_slot_invalidated', 'PostgreSQL removed WAL the slot still needed (1): its connector cannot resume from it', (s) => (s.invalidated ? 1 : 0));
  gauge('cdc_source_slot_retained_wal_bytes', 'WAL the slot keeps on the source (from restart_lsn)', (s) => s.retainedBytes);
  gauge('cdc_source_slot_unconfirmed_wal_bytes', 'WAL the connector has not confirmed (from confirmed_flush_lsn)', (s) => s.unconfirmedBytes);
  gauge('cdc_source_slot_oldest_unconfirmed_seconds', 'Age of the oldest commit the slot has not confirmed (0: none)', (s) => s.oldestUnconfirmedSeconds);
}
