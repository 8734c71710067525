// Everything `make seed` will write, decided up front from the seed alone: the database only
// assigns order ids, so the same --seed always yields the same orders and the same history.
import { Prng } from './prng';
import { OrderDraft, draftOrder } from './catalog';
import { Status, planPath } from './lifecycle';

export interface SeedOptions {
  readonly seed: number;
  readonly orders: number;
  readonly customers: number;
  /** Share of orders that leave 'pending' at all. */
  readonly advanceShare: number;
  /** Probability of each further lifecycle step once an order has started moving. */
  readonly continueP: number;
}

export const SEED_DEFAULTS: Omit<SeedOptions, 'seed'> = { orders: 500, customers: 300, advanceShare: 0.7, continueP: 0.75 };

export interface PlannedOrder extends OrderDraft {
  /** Statuses after 'pending', one separate transaction per step. */
  readonly path: readonly Status[];
}

export interface SeedPlan {
  readonly orders: readonly PlannedOrder[];
  /** rounds[r] = indexes into orders that take their (r+1)-th step in round r. */
  readonly rounds: readonly (readonly number[])[];
}

export function buildSeedPlan(o: SeedOptions): SeedPlan {
  const rng = new Prng(o.seed);
  const orders: PlannedOrder[] = [];
  for (let i = 0; i < o.orders; i++) {
    const draft = draftOrder(rng, o.customers);
    orders.push({ ...draft, path: planPath(rng, o.advanceShare, o.continueP) });
  }
  const rounds: number[][] = [];
  orders.forEach((order, i) =>
    order.path.forEach((_, step) => {
      (rounds[step] ??= []).push(i);
    }),
  );
  return { orders, rounds };
}


export interface PlanSummary {
  readonly orders: number;
  readonly customersUsed: number;
  readonly productsUsed: number;
  readonly totalCents: bigint;
  readonly transitions: number;
  readonly reached: Readonly<Record<Status, number>>;
  readonly final: Readonly<Record<Status, number>>;
}

export function summarizePlan(plan: SeedPlan): PlanSummary {
  const zero = (): Record<Status, number> => ({ pending: 0, paid: 0, shipped: 0, delivered: 0, cancelled: 0 });
  const reached = zero();
  const final = zero();
  let totalCents = 0n;
  let transitions = 0;
  for (const o of plan.orders) {
    totalCents += BigInt(o.amountCents);
    transitions += o.path.length;
    for (const s of o.path) reached[s]++;
    final[o.path.length ? o.path[o.path.length - 1] : 'pending']++;
  }
  return {
    orders: plan.orders.length,
    customersUsed: new Set(plan.orders.map((o) => o.customerId)).size,
    productsUsed: new Set(plan.orders.map((o) => o.productName)).size,
    totalCents,
    transitions,
    reached,
    final,
  };
}
