import { parsePgbench } from '../lib/pgbench';

const PG15 = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 10
query mode: simple
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 20 s
number of transactions actually processed: 76301
number of failed transactions: 0 (0.000%)
latency average = 1.047 ms
initial connection time = 9.470 ms
tps = 3818.742101 (without initial connection time)
`;

const PG13 = `transaction type: <builtin: TPC-B (sort of)>
scaling factor: 10
query mode: simple
number of clients: 4
number of threads: 2
duration: 10 s
number of transactions actually processed: 40000
latency average = 1.000 ms
tps = 3990.100000 (including connections establishing)
tps = 4001.250000 (excluding connections establishing)
`;

describe('parsePgbench', () => {
  it('reads TPS, transactions, failures, latency and duration of a PostgreSQL 15 report', () => {
    expect(parsePgbench(PG15)).toEqual({ tps: 3818.742101, transactions: 76301, failed: 0, latencyAvgMs: 1.047, durationSec: 20 });
  });

  it('takes the TPS without connection establishing from older reports', () => {
    const r = parsePgbench(PG13);
    expect(r.tps).toBe(4001.25);
    expect(r.failed).toBe(0);
    expect(r.transactions).toBe(40000);
  });

  it('counts failed transactions', () => {
    expect(parsePgbench(PG15.replace('number of failed transactions: 0 (0.000%)', 'number of failed transactions: 12 (0.016%)')).failed).toBe(12);
  });

  it('fails on output without a TPS line (pgbench aborted)', () => {
    expect(() => parsePgbench('pgbench: error: connection to server failed\n')).toThrow(/no "tps = " line/);
  });
});
