import { findGaps, startPosition, tpKey } from '../src/offsets';

const T = 'dbserver1.public.orders';
const item = (partition: number, offset: bigint, from?: bigint) => ({ topic: T, partition, offset, from });

describe('findGaps: a batch continues the stored offset of each partition', () => {
  const stored = new Map([[tpKey(T, 0), 5n], [tpKey(T, 1), 0n]]);
  it('accepts a batch starting exactly at the stored offsets', () => {
    expect(findGaps([item(0, 5n), item(1, 0n), item(0, 6n)], stored)).toEqual([]);
  });
  it('accepts events below the stored offset (already stored) followed by the continuation', () => {
    expect(findGaps([item(0, 3n), item(0, 4n), item(0, 5n)], stored)).toEqual([]);
  });
  it('names each partition starting past its stored offset', () => {
    expect(findGaps([item(0, 8n), item(1, 0n), item(0, 9n)], stored)).toEqual([{ topic: T, partition: 0, stored: 5n, first: 8n }]);
    expect(findGaps([item(1, 1n)], stored)).toEqual([{ topic: T, partition: 1, stored: 0n, first: 1n }]);
  });
  it('a partition without a stored row starts at 0', () => {
    expect(findGaps([item(7, 2n)], stored)).toEqual([{ topic: T, partition: 7, stored: 0n, first: 2n }]);
  });
  it('accepts a start past the stored offset when the consumer read across it (`from`)', () => {
    expect(findGaps([item(0, 7n, 5n)], stored)).toEqual([]);
    expect(findGaps([item(0, 7n, 6n)], stored)).toEqual([{ topic: T, partition: 0, stored: 5n, first: 7n }]);
  });
});

describe('startPosition: the warehouse decides where to read', () => {
  it('a stored offset is where reading continues', () => {
    expect(startPosition(42n, 0n)).toEqual({ cover: 42n, seek: 42n, lost: 0n });
    expect(startPosition(42n, 40n)).toEqual({ cover: 42n, seek: 42n, lost: 0n });
  });
  it('no stored offset: from the earliest offset the topic retains (not the group\'s Kafka offset)', () => {
    expect(startPosition(null, 0n)).toEqual({ cover: 0n, seek: 0n, lost: 0n });
  });
  it('offsets deleted by retention before they were stored are counted as lost', () => {
    expect(startPosition(null, 120n)).toEqual({ cover: 0n, seek: 120n, lost: 120n });
    expect(startPosition(100n, 120n)).toEqual({ cover: 100n, seek: 120n, lost: 20n });
  });
});
