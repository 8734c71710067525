import { Prng } from '../lib/prng';
import { DEFAULT_MIX, formatMix, parseMix, pickOp } from '../lib/mix';
import { IdPool } from '../lib/idpool';
import { ConfigError, intFlag, numberFlag, parseFlags } from '../lib/cli';
import { describeDbUrl, parseBrokers, requireEnv } from '../lib/env';
import { computeLag } from '../lib/kafkalag';

describe('--mix', () => {
  it('parses weights and fills in missing ops with 0', () => {
    expect(parseMix('insert=50,update=40,delete=10')).toEqual(DEFAULT_MIX);
    expect(parseMix(' insert = 1 , update=2.5')).toEqual({ insert: 1, update: 2.5, delete: 0 });
    expect(formatMix({ insert: 1, update: 1, delete: 2 })).toBe('insert 25%, update 25%, delete 50%');
  });

  it.each(['insert=50,upsert=1', 'insert', 'insert=-1', 'insert=0', 'insert=1,insert=2'])('rejects %p', (spec) => {
    expect(() => parseMix(spec)).toThrow(/--mix/);
  });

  it('draws ops in proportion to the weights', () => {
    const rng = new Prng(1);
    const n = { insert: 0, update: 0, delete: 0 };
    for (let i = 0; i < 20_000; i++) n[pickOp(DEFAULT_MIX, rng)]++;
    expect(n.insert / 20_000).toBeCloseTo(0.5, 1);
    expect(n.update / 20_000).toBeCloseTo(0.4, 1);
    expect(n.delete / 20_000).toBeCloseTo(0.1, 1);
  });
});

describe('IdPool', () => {
  it('hands each id out once until it is put back', () => {
    const pool = new IdPool(new Prng(1));
    for (let id = 1; id <= 5; id++) pool.add({ id, status: 'pending' });
    const taken = [1, 2, 3, 4, 5].map(() => pool.takeForUpdate()!.id);
    expect(taken.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(pool.takeForUpdate()).toBeUndefined();
  });

  it('never offers a delivered or cancelled order for a status update', () => {
    const pool = new IdPool(new Prng(1));
    pool.add({ id: 1, status: 'delivered' });
    pool.add({ id: 2, status: 'cancelled' });
    expect(pool.takeForUpdate()).toBeUndefined();
    expect(pool.size).toBe(2);
  });

  it('deletes finished orders first, then open ones', () => {
    const pool = new IdPool(new Prng(1));
    pool.add({ id: 1, status: 'paid' });
    pool.add({ id: 2, status: 'delivered' });
    expect(pool.takeForDelete()!.id).toBe(2);
    expect(pool.takeForDelete()!.id).toBe(1);
    expect(pool.takeForDelete()).toBeUndefined();
  });

  it('stays within its capacity', () => {
    const pool = new IdPool(new Prng(1), 10);
    for (let id = 0; id < 100; id++) pool.add({ id, status: 'pending' });
    expect(pool.size).toBe(10);
  });
});

describe('flags and environment', () => {
  it('parses integers strictly', () => {
    expect(intFlag('orders', '25', 500, 1)).toBe(25);
    expect(intFlag('orders', undefined, 500, 1)).toBe(500);
    for (const bad of ['2.5', 'ten', '', '0']) expect(() => intFlag('orders', bad, 500, 1)).toThrow(ConfigError);
    expect(numberFlag('rate', '2.5', 1, 0.001)).toBe(2.5);
    expect(() => numberFlag('rate', '-1', 1, 0.001)).toThrow(/--rate/);
  });

  it('turns unknown flags into a config error', () => {
    expect(() => parseFlags(['--nope'], {})).toThrow(ConfigError);
    expect(parseFlags(['--orders', '3'], { orders: { type: 'string' } }).orders).toBe('3');
  });

  it('names a missing variable', () => {
    expect(() => requireEnv({}, 'SOURCE_DATABASE_URL')).toThrow(/SOURCE_DATABASE_URL is not set/);
    expect(requireEnv({ X: ' v ' }, 'X')).toBe('v');
  });

  it('never shows a password in messages', () => {
    expect(describeDbUrl('postgresql://shop:s3cret@db.local:6543/shop')).toBe('shop@db.local:6543/shop');
    expect(describeDbUrl('postgresql://shop:s3cret@db.local/shop')).not.toContain('s3cret');
  });

  it('validates broker lists', () => {
    expect(parseBrokers('a:9092, b:9093')).toEqual(['a:9092', 'b:9093']);
    expect(() => parseBrokers('localhost')).toThrow(/host:port/);
  });
});

describe('computeLag', () => {
  it('sums high watermark minus next offset per partition', () => {
    const r = computeLag(
      [
        { partition: 1, low: 0n, high: 10n },
        { partition: 0, low: 0n, high: 100n },
      ],
      new Map([
        [0, 100n],
        [1, 7n],
      ]),
    );
    expect(r.total).toBe(3n);
    expect(r.partitions.map((p) => [p.partition, p.lag])).toEqual([
      [0, 0n],
      [1, 3n],
    ]);
  });

  it('counts everything retained as pending when nothing is stored, and never goes negative', () => {
    const r = computeLag(
      [
        { partition: 0, low: 5n, high: 12n },
        { partition: 1, low: 0n, high: 4n },
      ],
      new Map([[1, 9n]]),
    );
    expect(r.partitions.map((p) => p.lag)).toEqual([7n, 0n]);
    expect(r.partitions[0].next).toBeNull();
  });
});
