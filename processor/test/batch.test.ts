import { Batch } from '../src/batch';

describe('micro-batch limits', () => {
  const limits = { maxEvents: 3, maxBytes: 100, lingerMs: 50 };
  it('is full at the event count', () => {
    const b = new Batch<number>(limits);
    [1, 2].forEach((i) => b.add(i, 1, 0));
    expect(b.isFull()).toBe(false);
    b.add(3, 1, 0);
    expect(b.isFull()).toBe(true);
  });
  it('is full at the byte count', () => {
    const b = new Batch<number>(limits);
    b.add(1, 100, 0);
    expect(b.isFull()).toBe(true);
  });
  it('is due lingerMs after its first event', () => {
    const b = new Batch<number>(limits);
    expect(b.dueIn(0)).toBeNull();
    b.add(1, 1, 1000);
    b.add(2, 1, 1040);
    expect(b.dueIn(1040)).toBe(10);
    expect(b.dueIn(2000)).toBe(0);
  });
});
