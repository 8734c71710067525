// A fixed product catalogue with prices in integer cents; seed and load both draw from it so
// the warehouse shows recognisable products. Cheap and large prices exercise decimal handling.
import { Prng } from './prng';
import { lineAmountCents } from './money';

export interface Product {
  readonly name: string;
  readonly priceCents: number;
}

export const CATALOGUE: readonly Product[] = [
  { name: 'Sticker Pack', priceCents: 99 },
  { name: 'USB-C Cable 1m', priceCents: 899 },
  { name: 'Coffee Beans 1kg', priceCents: 2450 },
  { name: 'Ceramic Mug', priceCents: 1295 },
  { name: 'Notebook A5', priceCents: 650 },
  { name: 'Fountain Pen', priceCents: 4900 },
  { name: 'Desk Lamp', priceCents: 3999 },
  { name: 'Wireless Mouse', priceCents: 2999 },
  { name: 'Mechanical Keyboard', priceCents: 12900 },
  { name: 'Noise-Cancelling Headphones', priceCents: 27999 },
  { name: '27" Monitor', priceCents: 32900 },
  { name: 'Laptop Stand', priceCents: 4599 },
  { name: 'Webcam HD', priceCents: 6950 },
  { name: 'Espresso Machine', priceCents: 54900 },
  { name: 'Office Chair', priceCents: 38900 },
  { name: 'Standing Desk', priceCents: 64900 },
  { name: 'Running Shoes', priceCents: 11995 },
  { name: 'Rain Jacket', priceCents: 8900 },
  { name: 'Backpack 25L', priceCents: 7450 },
  { name: 'Water Bottle', priceCents: 1999 },
  { name: 'Yoga Mat', priceCents: 3450 },
  { name: 'Board Game', priceCents: 3999 },
  { name: 'Paperback Novel', priceCents: 1299 },
  { name: 'Tea Sampler', priceCents: 1850 },
  { name: 'Chef Knife', priceCents: 8999 },
  { name: 'Cast Iron Pan', priceCents: 5499 },
  { name: 'Bluetooth Speaker', priceCents: 7999 },
  { name: 'Smart Watch', priceCents: 24900 },
  { name: 'E-Reader', priceCents: 13999 },
  { name: 'Road Bike', priceCents: 189900 },
];

export interface OrderDraft {
  readonly customerId: number;
  readonly productName: string;
  readonly amountCents: number;
}

/** Customer ids start above 1000 so they are never mistaken for order ids in examples. */
export const FIRST_CUSTOMER_ID = 1001;

/**
 * One new order: a few customers order much more often than most (squaring a uniform draw
 * skews towards low indices), quantity is usually one, and one order in ten gets a discount.
 */
export function draftOrder(rng: Prng, customers: number): OrderDraft {
  if (!Number.isSafeInteger(customers) || customers < 1) throw new RangeError(`customers must be >= 1, got ${customers}`);
  const u = rng.next();
  const customerId = FIRST_CUSTOMER_ID + Math.floor(u * u * customers);
  const product = rng.pick(CATALOGUE);
  const quantity = rng.weighted([[1, 70], [2, 20], [3, 7], [5, 3]] as const);
  const discount = rng.chance(0.1) ? rng.pick([5, 10, 15, 25]) : 0;
  return { customerId, productName: product.name, amountCents: lineAmountCents(product.priceCents, quantity, discount) };
}
