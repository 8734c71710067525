// The order lifecycle both seed and load follow, so the data a dashboard shows is plausible:
// pending → paid → shipped → delivered, with cancellation possible until shipping.
import { Prng } from './prng';

export const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled'] as const;
export type Status = (typeof STATUSES)[number];

const TRANSITIONS: Readonly<Record<Status, readonly (readonly [Status, number])[]>> = {
  pending: [['paid', 85], ['cancelled', 15]],
  paid: [['shipped', 92], ['cancelled', 8]],
  shipped: [['delivered', 100]],
  delivered: [],
  cancelled: [],
};

export function isStatus(s: string): s is Status {
  return (STATUSES as readonly string[]).includes(s);
}

export function isTerminal(s: Status): boolean {
  return TRANSITIONS[s].length === 0;
}

export function allowedNext(s: Status): readonly Status[] {
  return TRANSITIONS[s].map(([to]) => to);
}

export function canTransition(from: Status, to: Status): boolean {
  return allowedNext(from).includes(to);
}

/** The next status of a non-terminal order, drawn with the lifecycle's odds. */
export function nextStatus(from: Status, rng: Prng): Status {
  const options = TRANSITIONS[from];
  if (options.length === 0) throw new RangeError(`'${from}' is a final status`);
  return rng.weighted(options);
}

/**
 * The statuses an order goes through after 'pending'. It leaves 'pending' with probability
 * `firstStepP` and takes each further step with probability `continueP`, so a batch ends up
 * spread over every stage.
 */
export function planPath(rng: Prng, firstStepP: number, continueP: number): Status[] {
  const path: Status[] = [];
  let s: Status = 'pending';
  while (!isTerminal(s) && rng.chance(path.length === 0 ? firstStepP : continueP)) {
    s = nextStatus(s, rng);
    path.push(s);
  }
  return path;
}
