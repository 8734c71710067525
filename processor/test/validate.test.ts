import * as fs from 'fs';
import * as path from 'path';
import { parseRules, validate } from '../src/validate';
import type { ChangeEvent } from '../src/decode';

const rules = parseRules(JSON.parse(fs.readFileSync(path.join(__dirname, '../rules.json'), 'utf8')), 'rules.json');

const event = (row: Record<string, unknown>, op: ChangeEvent['op'] = 'c'): ChangeEvent =>
  ({ table: 'orders', op, row, keyText: '1', sourceTsMicros: 0n, lsn: 1n, txId: null, model: null as any, schemaKey: 'x' });

const good = { order_id: 1n, customer_id: 2n, product_name: 'Phone', amount: '10.00', status: 'paid' };

describe('validation rules', () => {
  it('passes a good order', () => {
    expect(validate(event(good), rules)).toBeNull();
  });

  it.each([
    [{ amount: '-0.01' }, 'amount -0.01 is below the minimum 0'],
    [{ product_name: '  ' }, 'product_name is required'],
    [{ customer_id: null }, 'customer_id is required'],
    [{ status: 'lost' }, 'status "lost" is not one of pending, paid, shipped, delivered, cancelled'],
  ])('rejects %j', (change, reason) => {
    expect(validate(event({ ...good, ...change }), rules)).toBe(reason);
  });

  it('accepts zero exactly and does not validate deletes', () => {
    expect(validate(event({ ...good, amount: '0.00' }), rules)).toBeNull();
    expect(validate(event({ order_id: 1n }, 'd'), rules)).toBeNull();
  });

  it('leaves tables without rules alone', () => {
    expect(validate({ ...event({}), table: 'customers' }, rules)).toBeNull();
  });

  it('names the bad entry of a rules file', () => {
    expect(() => parseRules({ orders: [{ column: 'a', rule: 'between' }] }, 'r.json')).toThrow('r.json: orders[0]: unknown rule "between"');
    expect(() => parseRules({ orders: [{ column: 'a', rule: 'min', value: 'x' }] }, 'r.json')).toThrow('r.json: orders[0]: "value" must be a decimal');
  });
});
