// Prometheus metrics of the processor (GET /metrics).
import * as client from 'prom-client';

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
