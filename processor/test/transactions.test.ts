// Transaction metadata: END records decoded from Debezium's Avro, events counted per transaction.
import { transactionEnd } from '../src/decode';
import { TransactionCounts } from '../src/transactions';
import { transactionFixture } from './fixtures/transactions';

describe('transaction metadata', () => {
  it('decodes an END record: xid and commit LSN from its id, counts per table, commit time', async () => {
    const fx = transactionFixture();
    const end = await fx.record('END', 755n, 26450200n, 1796020483382n, { 'public.orders': 2n, 'public.lines': 3n });
    expect(end.decoded).toEqual({
      kind: 'transaction',
      end: { prefix: 'dbserver1', id: '755:26450200', xid: 755n, endLsn: 26450200n, commitTsMs: 1796020483382n, eventCount: 5n, collections: { 'public.orders': '2', 'public.lines': '3' } },
    });
  });

  it('skips BEGIN records; an END of a transaction without captured changes counts nothing', async () => {
    const fx = transactionFixture();
    expect((await fx.record('BEGIN', 754n, 26449480n, 1n)).decoded).toEqual({ kind: 'skip', why: 'transaction begin' });
    expect((await fx.record('END', 754n, 26449616n, 1n)).decoded).toMatchObject({ kind: 'transaction', end: { eventCount: 0n, collections: {} } });
  });

  it('refuses an id that is not <xid>:<lsn>', () => {
    expect(() => transactionEnd('p.transaction', { status: 'END', id: 'file:123', ts_ms: 1n })).toThrow(/not <xid>:<lsn>/);
  });

  it('marks change events inside a transaction, and not those outside (snapshot reads)', async () => {
    const fx = transactionFixture();
    const inside = await fx.change('c', 1n, '1.00', 100n, 1_000_000n, 755n);
    const outside = await fx.change('r', 1n, '1.00', 100n, 1_000_000n, null);
    expect(inside.decoded).toMatchObject({ kind: 'event', event: { inTransaction: true, txId: 755n } });
    expect(outside.decoded).toMatchObject({ kind: 'event', event: { inTransaction: false } });
  });

  it('counts per (prefix, xid, table) and lists rows in one sorted order for every lane', async () => {
    const fx = transactionFixture();
    const counts = new TransactionCounts();
    for (const [xid, lsn, ts] of [[9n, 1n, 5n], [10n, 2n, 6n], [9n, 3n, 4n]] as const) {
      const d = (await fx.change('c', lsn, '1.00', lsn, ts, xid)).decoded;
      if (d.kind === 'event') counts.add('dbserver1.public.orders', d.event);
    }
    const snap = (await fx.change('r', 7n, '1.00', 7n, 1n, null)).decoded;
    if (snap.kind === 'event') counts.add('dbserver1.public.orders', snap.event);
    counts.addXid('a.public.t', 99n, 1n);
    expect(counts.rows()).toEqual([
      { prefix: 'a', xid: 99n, collection: 'public.t', n: 1, lastTsMicros: 1n },
      // The latest commit time its events carry (all events of one transaction carry the same).
      { prefix: 'dbserver1', xid: 9n, collection: 'public.orders', n: 2, lastTsMicros: 5n },
      { prefix: 'dbserver1', xid: 10n, collection: 'public.orders', n: 1, lastTsMicros: 6n },
    ]);
  });
});

describe('transaction topics', () => {
  const { transactionTopics, isTransactionTopic, captureSource } = require('../src/topics');
  it('loads each followed connector\'s <prefix>.transaction that exists, apart from its change topics', () => {
    const src = captureSource('c', { 'connector.class': 'io.debezium.connector.postgresql.PostgresConnector', 'topic.prefix': 'shop' });
    expect(transactionTopics([src], ['shop.public.orders', 'shop.transaction', 'other.transaction'])).toEqual(['shop.transaction']);
    expect(transactionTopics([src], ['shop.public.orders'])).toEqual([]);
  });
  it('tells a fixed transaction topic from a table named transaction', () => {
    expect(isTransactionTopic('shop.transaction')).toBe(true);
    expect(isTransactionTopic('shop.public.transaction')).toBe(false);
  });
});
