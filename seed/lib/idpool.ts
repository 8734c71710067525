// The orders the load generator may update or delete. An id is taken out while a statement on
// it is in flight, so two concurrent statements never touch the same row (no lock waits, no
// update of a row that a concurrent delete removes), and put back with its new status after.
import { Prng } from './prng';
import { Status, isTerminal } from './lifecycle';

export interface PooledOrder {
  readonly id: number;
  readonly status: Status;
}

export class IdPool {
  private readonly open: PooledOrder[] = [];
  private readonly closed: PooledOrder[] = [];

  /** @param capacity per list; beyond it ids are forgotten, which only narrows the choice. */
  constructor(
    private readonly rng: Prng,
    private readonly capacity = 200_000,
  ) {}

  add(order: PooledOrder): void {
    const list = isTerminal(order.status) ? this.closed : this.open;
    if (list.length < this.capacity) list.push(order);
    else list[this.rng.int(0, list.length - 1)] = order;
  }

  /** An order that can still change status, or undefined when none is idle. */
  takeForUpdate(): PooledOrder | undefined {
    return this.takeRandom(this.open);
  }

  /** Deletes purge finished orders first (as a retention job would), then abandoned ones. */
  takeForDelete(): PooledOrder | undefined {
    return this.takeRandom(this.closed) ?? this.takeRandom(this.open);
  }

  get size(): number {
    return this.open.length + this.closed.length;
  }

  get openCount(): number {
    return this.open.length;
  }

  private takeRandom(list: PooledOrder[]): PooledOrder | undefined {
    if (list.length === 0) return undefined;
    const i = this.rng.int(0, list.length - 1);
    const item = list[i];
    list[i] = list[list.length - 1];
    list.pop();
    return item;
  }
}
