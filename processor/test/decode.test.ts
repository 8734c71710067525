import { Decoder, parseWire } from '../src/decode';
import { envelopeSchema, FakeSchemas, keySchema, order, ordersValueFields, source, wire } from './fixtures/debezium';

function setup() {
  const schemas = new FakeSchemas();
  const valueId = schemas.add(7, envelopeSchema('orders', ordersValueFields));
  const keyId = schemas.add(3, keySchema('orders'));
  const encode = (value: any, key: any = { order_id: value.after?.order_id ?? value.before?.order_id }) => ({
    key: wire(keyId, schemas.type(keyId), key),
    value: wire(valueId, schemas.type(valueId), value),
  });
  return { decoder: new Decoder(schemas), encode };
}

const envelope = (op: string, before: any, after: any, lsn = 100n) =>
  ({ before, after, source: source(lsn, 1737014399999999n), transaction: null, op, ts_ms: 1n, ts_us: 1n, ts_ns: 1n });

describe('decoding Debezium change events', () => {
  it('decodes an insert with exact decimal, BigInt ids, commit time and position', async () => {
    const { decoder, encode } = setup();
    const m = encode(envelope('c', null, order(5001n, '999.99')));
    const d = await decoder.decode('dbserver1.public.orders', m.key, m.value);
    expect(d.kind).toBe('event');
    if (d.kind !== 'event') return;
    expect(d.event.table).toBe('orders');
    expect(d.event.op).toBe('c');
    expect(d.event.row.amount).toBe('999.99');
    expect(d.event.row.order_id).toBe(5001n);
    expect(d.event.keyText).toBe('i5001;');
    expect(d.event.lsn).toBe(100n);
    expect(d.event.txId).toBe(777n);
    expect(d.event.sourceTsMicros).toBe(1737014399999999n);
    expect(d.event.model.columns.find((c) => c.name === 'amount')?.pgType).toBe('numeric(12,2)');
  });

  it('keeps the key of a delete whose before image has only the key', async () => {
    const { decoder, encode } = setup();
    const before = { ...order(5001n), customer_id: 0n, product_name: '', status: '' };
    const m = encode(envelope('d', before, null));
    const d = await decoder.decode('dbserver1.public.orders', m.key, m.value);
    expect(d.kind === 'event' && d.event.op === 'd' && d.event.row.order_id === 5001n).toBe(true);
  });

  it('decodes an update from its after image (the before image is skipped) and a delete from its before image', async () => {
    const { decoder, encode } = setup();
    const u = encode(envelope('u', order(7n, '1.00', 'pending'), order(7n, '2.00', 'paid'), 200n));
    const du = await decoder.decode('dbserver1.public.orders', u.key, u.value);
    expect(du.kind === 'event' && [du.event.op, du.event.row.amount, du.event.row.status, du.event.lsn]).toEqual(['u', '2.00', 'paid', 200n]);
    const d = encode(envelope('d', order(7n, '2.00', 'paid'), null, 201n));
    const dd = await decoder.decode('dbserver1.public.orders', d.key, d.value);
    expect(dd.kind === 'event' && [dd.event.op, dd.event.row.amount, dd.event.row.order_id]).toEqual(['d', '2.00', 7n]);
  });

  it('skips tombstones', async () => {
    const { decoder, encode } = setup();
    const m = encode(envelope('c', null, order(1n)));
    expect(await decoder.decode('dbserver1.public.orders', m.key, null)).toEqual({ kind: 'skip', why: 'tombstone' });
  });

  it('rejects bytes that are not the Confluent wire format, naming why', async () => {
    const { decoder } = setup();
    const d = await decoder.decode('dbserver1.public.orders', null, Buffer.from('{"not":"avro"}'));
    expect(d).toMatchObject({ kind: 'reject', stage: 'decode', table: 'orders' });
    if (d.kind === 'reject') expect(d.reason).toMatch(/magic byte 123/);
  });

  it('rejects an unknown schema id and a truncated payload', async () => {
    const { decoder, encode } = setup();
    const unknown = Buffer.from([0, 0, 0, 0, 99, 1, 2]);
    expect(await decoder.decode('dbserver1.public.orders', null, unknown)).toMatchObject({ kind: 'reject', stage: 'decode' });
    const m = encode(envelope('c', null, order(1n)));
    expect(await decoder.decode('dbserver1.public.orders', m.key, m.value.subarray(0, 20))).toMatchObject({ kind: 'reject', stage: 'decode' });
  });

  it('rejects events of a table without a primary key', async () => {
    const { decoder, encode } = setup();
    const m = encode(envelope('c', null, order(1n)));
    expect(await decoder.decode('dbserver1.public.orders', null, m.value)).toMatchObject({ kind: 'reject', stage: 'schema' });
  });

  it('decodes a TRUNCATE (op t, no key, no row image) into its position in the log', async () => {
    const { decoder, encode } = setup();
    const m = encode(envelope('t', null, null, 300n), { order_id: 0n }); // the key is not sent
    const d = await decoder.decode('dbserver1.public.orders', null, m.value);
    expect(d).toEqual({ kind: 'truncate', table: 'orders', lsn: 300n, sourceTsMicros: 1737014399999999n, txId: 777n });
  });

  it('rejects a TRUNCATE without a position in the log', async () => {
    const { decoder, encode } = setup();
    const m = encode({ ...envelope('t', null, null), source: { ...source(1n, 5n), lsn: null, txId: null } }, { order_id: 0n });
    expect(await decoder.decode('dbserver1.public.orders', null, m.value)).toMatchObject({ kind: 'reject', stage: 'validate', reason: 'truncate without source.lsn' });
  });

  it('retries, never rejects, when the schema source fails without a definite answer', async () => {
    const { encode } = setup();
    const m = encode(envelope('c', null, order(1n)));
    const broken = new Decoder({ get: async () => { throw Object.assign(new Error('Response Error: 400 connect ECONNREFUSED'), { status: 400 }); } });
    await expect(broken.decode('dbserver1.public.orders', m.key, m.value)).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
  });

  // Asking the schema source (a promise) for every message cost two microtask turns per
  // event; a fetched schema is kept by the decoder itself, as the registry client does.
  it('asks the schema source once per schema id, not once per message', async () => {
    const schemas = new FakeSchemas();
    const valueId = schemas.add(7, envelopeSchema('orders', ordersValueFields));
    const keyId = schemas.add(3, keySchema('orders'));
    const asked: number[] = [];
    const decoder = new Decoder({ get: (id) => (asked.push(id), schemas.get(id)) });
    for (const n of [1n, 2n, 3n]) {
      const d = await decoder.decode('dbserver1.public.orders', wire(keyId, schemas.type(keyId), { order_id: n }), wire(valueId, schemas.type(valueId), envelope('c', null, order(n))));
      expect(d.kind === 'event' && d.event.row.order_id).toBe(n);
    }
    expect(asked.sort()).toEqual([3, 7]);
  });

  it('asks again for a schema whose fetch failed', async () => {
    const { encode } = setup();
    const schemas = new FakeSchemas();
    schemas.add(7, envelopeSchema('orders', ordersValueFields));
    schemas.add(3, keySchema('orders'));
    let fail = true;
    const decoder = new Decoder({ get: (id) => (fail ? Promise.reject(new Error('connect ECONNREFUSED')) : schemas.get(id)) });
    const m = encode(envelope('c', null, order(1n)));
    await expect(decoder.decode('dbserver1.public.orders', m.key, m.value)).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
    fail = false;
    expect((await decoder.decode('dbserver1.public.orders', m.key, m.value)).kind).toBe('event');
  });

  it('parses the wire header', () => {
    expect(parseWire(Buffer.from([0, 0, 0, 1, 2, 42]))).toEqual({ schemaId: 258, payload: Buffer.from([42]) });
    expect(() => parseWire(Buffer.from([0, 1]))).toThrow(/too short/);
  });
});
