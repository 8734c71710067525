import { VerifyReport, formatReport } from '../lib/verify';
import { FactCheck } from '../lib/reconcile';

const cleanFacts: FactCheck = {
  total: 30,
  byOp: { c: 12, u: 16, d: 2 },
  keys: 12,
  duplicateRows: 0,
  duplicateSamples: [],
  nullPositions: 0,
  badHistoryKeys: 0,
  badHistorySamples: [],
  lastEventMismatches: 0,
  lastEventSamples: [],
};

const base: VerifyReport = {
  caughtUp: true,
  waitedSec: 1.5,
  lag: { kind: 'lag', total: 0n, partitions: [{ partition: 0, high: 30n, next: 30n, lag: 0n }] },
  sourceRows: 10,
  latestExists: true,
  factExists: true,
  rows: { sourceRows: 10, targetRows: 10, matched: 10, missing: 0, extra: 0, different: 0, samples: [] },
  rowDetails: [],
  facts: cleanFacts,
  rejected: { total: 0, keys: 0, reasons: {} },
  excludedKeys: 0,
};
const opts = { kafkaChecked: true, topic: 'dbserver1.public.orders' };

describe('formatReport', () => {
  it('passes a full match with a one-line verdict last', () => {
    const { ok, lines } = formatReport(base, opts);
    expect(ok).toBe(true);
    expect(lines[lines.length - 1]).toMatch(/^verify: OK — 10 rows identical .* 30 events for 12 keys, none duplicated.*Kafka lag 0/);
  });

  it('fails and lists keys when rows differ', () => {
    const r: VerifyReport = {
      ...base,
      rows: { sourceRows: 10, targetRows: 10, matched: 8, missing: 1, extra: 1, different: 1, samples: [] },
      rowDetails: [
        { key: '3', kind: 'missing', columns: [] },
        { key: '5', kind: 'different', columns: [{ column: 'amount', source: '1.00', target: '1.01' }] },
        { key: '11', kind: 'extra', columns: [] },
      ],
    };
    const { ok, lines } = formatReport(r, opts);
    expect(ok).toBe(false);
    const text = lines.join('\n');
    expect(text).toContain('missing from public.orders_latest (1): order_id 3');
    expect(text).toContain('extra in public.orders_latest (1): order_id 11');
    expect(text).toContain("order_id 5: amount '1.00' (source) vs '1.01' (warehouse)");
    expect(lines[lines.length - 1]).toBe('verify: FAILED — public.orders_latest: 1 missing, 1 extra, 1 different of 10 source rows');
  });

  it('says which differing keys the processor rejected, and how to leave them out', () => {
    const r: VerifyReport = {
      ...base,
      rows: { sourceRows: 10, targetRows: 9, matched: 9, missing: 1, extra: 0, different: 0, samples: [] },
      rowDetails: [{ key: '16', kind: 'missing', columns: [] }],
      rejected: { total: 3, keys: 1, reasons: { '16': 'amount -5.00 is below the minimum 0' } },
    };
    const { ok, lines } = formatReport(r, opts);
    expect(ok).toBe(false);
    expect(lines).toContain('      order_id 16 was rejected by the processor: amount -5.00 is below the minimum 0');
    expect(lines[lines.length - 1]).toContain('(all rejected by the processor; --allow-rejected leaves those out)');
    expect(lines.join('\n')).toContain('3 events in cdc.rejected_events');
  });

  it('passes with --allow-rejected when only rejected keys differ, and says they were left out', () => {
    const { ok, lines } = formatReport({ ...base, excludedKeys: 2, rejected: { total: 2, keys: 2, reasons: {} } }, opts);
    expect(ok).toBe(true);
    expect(lines.join('\n')).toContain('2 keys with rejected events left out of the row comparison (--allow-rejected)');
  });

  it('fails on duplicate events and broken histories even when latest matches', () => {
    const r: VerifyReport = {
      ...base,
      facts: {
        ...cleanFacts,
        duplicateRows: 2,
        duplicateSamples: [{ orderId: '7', op: 'u', lsn: '123', copies: 3 }],
        badHistoryKeys: 1,
        badHistorySamples: [{ orderId: '8', op: 'u', prevOp: 'd', lsn: '456', rule: 'event after a delete' }],
      },
    };
    const { ok, lines } = formatReport(r, opts);
    expect(ok).toBe(false);
    expect(lines[lines.length - 1]).toBe('verify: FAILED — public.orders_fact: 2 duplicate events; 1 key with a broken history');
    expect(lines.join('\n')).toContain("order_id 8: event after a delete ('u' after 'd', source_lsn 456)");
  });

  it('fails when the pipeline did not catch up, naming the lag', () => {
    const r: VerifyReport = {
      ...base,
      caughtUp: false,
      waitedSec: 120,
      lag: { kind: 'lag', total: 42n, partitions: [{ partition: 0, high: 72n, next: 30n, lag: 42n }] },
      processorHealth: 'processor http://x/health: unreachable (fetch failed)',
      watermarkWaits: ['consistency watermark of dbserver1 waits for transaction 7:9 (xid 7): public.orders has 1 of 2 events'],
    };
    const { ok, lines } = formatReport(r, opts);
    expect(ok).toBe(false);
    expect(lines[lines.length - 1]).toBe('verify: FAILED — not caught up after 120 s (Kafka lag 42)');
    expect(lines).toContain('  processor http://x/health: unreachable (fetch failed)');
    expect(lines).toContain('  consistency watermark of dbserver1 waits for transaction 7:9 (xid 7): public.orders has 1 of 2 events');
  });

  it('accepts an empty source with no warehouse tables yet', () => {
    const r: VerifyReport = { ...base, lag: { kind: 'no-topic' }, sourceRows: 0, latestExists: false, factExists: false, rows: null, facts: null };
    const { ok, lines } = formatReport(r, opts);
    expect(ok).toBe(true);
    expect(lines[lines.length - 1]).toBe('verify: OK — source and warehouse are both empty (no topic yet)');
  });

  it('fails when the source has rows but the warehouse table is missing', () => {
    const r: VerifyReport = { ...base, caughtUp: false, waitedSec: 5, lag: { kind: 'no-topic' }, latestExists: false, factExists: false, rows: null, facts: null };
    const { ok, lines } = formatReport(r, opts);
    expect(ok).toBe(false);
    expect(lines[lines.length - 1]).toContain('table public.orders_latest does not exist');
  });

  it('says when the Kafka check was skipped', () => {
    const { lines } = formatReport({ ...base, lag: null }, { ...opts, kafkaChecked: false });
    expect(lines.join('\n')).toContain('KAFKA_BOOTSTRAP_SERVERS is not set');
    expect(lines[lines.length - 1]).toContain('Kafka lag not checked');
  });
});
