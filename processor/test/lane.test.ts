// The lane's retrying with a writer double: what is retried as it is, what is split, in which order.
import { Lane, DATA_ATTEMPTS } from '../src/lane';
import { OffsetGapError } from '../src/errors';
import type { BatchItem, BatchResult } from '../src/writer';

const T = 't';
const log: any = { debug() {}, info() {}, warn() {}, error() {} };
const item = (partition: number, offset: bigint): BatchItem => ({ topic: T, partition, offset, key: null, value: null, decoded: { kind: 'skip', why: 'test' } });
const result = (): BatchResult => ({ tables: new Map(), rejects: [], alreadyStored: 0, offsets: new Map(), phases: {} });

/** A writer that fails every batch containing a `bad` item with `error()`, and records the rest. */
function fakeWriter(bad: (i: BatchItem) => boolean, error: () => Error) {
  const committed: string[] = [];
  const rejected: string[] = [];
  let attempts = 0;
  const writer: any = {
    attempts: () => attempts,
    async write(items: BatchItem[]) {
      attempts++;
      if (items.some((i) => i.loadError === undefined && bad(i))) throw error();
      for (const i of items) (i.loadError !== undefined ? rejected : committed).push(`${i.partition}:${i.offset}`);
      return result();
    },
    async reset() {},
    async close() {},
  };
  return { writer, committed, rejected };
}

function lane(writer: any, opts: { stopping?: () => boolean } = {}) {
  const calls = { failing: 0, written: 0 };
  const hooks: any = {
    written: () => calls.written++, failing: () => calls.failing++, recovered: () => undefined, writeError: () => undefined,
    stopping: opts.stopping ?? (() => false), backoff: () => 1, gap: () => undefined,
  };
  return { lane: new Lane(0, { maxEvents: 100, maxBytes: 1 << 30, lingerMs: 60_000 }, writer, hooks, log), calls };
}

async function fill(l: Lane, items: BatchItem[]) {
  for (const i of items) await l.add(i, 1, async () => undefined);
}

describe('a batch failing on its data', () => {
  it('is tried a few times, then split: the culprit is rejected, the rest lands in order', async () => {
    const items = [0, 1, 2, 3, 4, 5, 6].flatMap((o) => [item(0, BigInt(o)), item(1, BigInt(o))]);
    const { writer, committed, rejected } = fakeWriter((i) => i.partition === 1 && i.offset === 4n, () => new RangeError('Invalid time value'));
    const { lane: l, calls } = lane(writer);
    await fill(l, items);
    await l.drain();
    expect(rejected).toEqual(['1:4']);
    expect(committed).toEqual(items.map((i) => `${i.partition}:${i.offset}`).filter((k) => k !== '1:4'));
    expect(writer.attempts()).toBeGreaterThanOrEqual(DATA_ATTEMPTS);
    expect(calls.failing).toBe(0);
  });

  it('isolates several culprits', async () => {
    const items = Array.from({ length: 20 }, (_, o) => item(0, BigInt(o)));
    const { writer, committed, rejected } = fakeWriter((i) => i.offset === 0n || i.offset === 13n || i.offset === 19n, () => Object.assign(new Error('value too long'), { code: '22001', severity: 'ERROR' }));
    const { lane: l } = lane(writer);
    await fill(l, items);
    await l.drain();
    expect(rejected).toEqual(['0:0', '0:13', '0:19']);
    expect(committed).toHaveLength(17);
  });
});

describe('a batch failing because the warehouse is away', () => {
  it('is retried as a whole (never split), with consumption paused, until it lands', async () => {
    let down = 5;
    const committed: number[] = [];
    const writer: any = {
      async write(items: BatchItem[]) {
        if (down-- > 0) throw new Error('Connection terminated unexpectedly');
        committed.push(items.length);
        return result();
      },
      async reset() {}, async close() {},
    };
    const { lane: l, calls } = lane(writer);
    await fill(l, Array.from({ length: 10 }, (_, o) => item(0, BigInt(o))));
    await l.drain();
    expect(committed).toEqual([10]);
    expect(calls.failing).toBe(5);
  });
});

describe('a batch with a partition that does not continue the stored offset', () => {
  it('drops that partition (here and in the open batch), asks for it to be read again, and writes the rest', async () => {
    const committed: string[] = [];
    let refused = false;
    const writer: any = {
      async write(items: BatchItem[]) {
        if (!refused && items.some((i) => i.partition === 1)) {
          refused = true;
          throw new OffsetGapError([{ topic: T, partition: 1, stored: 0n, first: 3n }]);
        }
        committed.push(...items.map((i) => `${i.partition}:${i.offset}`));
        return result();
      },
      async reset() {}, async close() {},
    };
    const gaps: unknown[] = [];
    const hooks: any = {
      written: () => undefined, failing: () => undefined, recovered: () => undefined, writeError: () => undefined,
      stopping: () => false, backoff: () => 1, gap: (g: unknown[]) => gaps.push(...g),
    };
    const l = new Lane(0, { maxEvents: 4, maxBytes: 1 << 30, lingerMs: 60_000 }, writer, hooks, log);
    // The first four fill a batch that is written at once; the next two stay open meanwhile.
    await fill(l, [item(0, 0n), item(1, 3n), item(0, 1n), item(1, 4n), item(1, 5n), item(0, 2n)]);
    await l.drain();
    expect(gaps).toEqual([{ topic: T, partition: 1, stored: 0n, first: 3n }]);
    expect(committed).toEqual(['0:0', '0:1', '0:2']);
  });
});
