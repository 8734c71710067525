// Bad data never stops the stream and is never dropped silently: it lands in
// cdc.rejected_events with its reason, and good rows keep flowing.
import { Kafka, logLevel } from 'kafkajs';
import { closeAll, source, stackEnv, warehouse, waitFor } from './lib/stack';

afterAll(closeAll);

const customer = () => 100_000 + Math.floor(Math.random() * 800_000_000);

async function insert(c: number, product: string, amount: string, status: string): Promise<string> {
  const r = await source().query(
    'INSERT INTO orders (customer_id, product_name, amount, status) VALUES ($1, $2, $3::numeric, $4) RETURNING order_id',
    [c, product, amount, status],
  );
  return r.rows[0].order_id;
}

const rejectsAt = async (field: string, value: string) =>
  (await warehouse().query(`SELECT * FROM cdc.rejected_events WHERE payload->'row'->>'${field}' = $1 ORDER BY id`, [value])).rows;

describe('bad input', () => {
  it('rejects a row that breaks a rule, with its reason, while good rows keep flowing', async () => {
    const c = customer();
    const bad = await insert(c, 'Refund?', '-5.00', 'pending');
    const badStatus = await insert(c, 'Lost parcel', '3.00', 'lost');
    const good = await insert(c, 'Good one', '7.00', 'paid');
    await waitFor('the good row', async () =>
      (await warehouse().query('SELECT 1 FROM orders_latest WHERE order_id = $1', [good])).rowCount === 1);
    const r1 = await waitFor('the negative amount rejected', async () => (await rejectsAt('order_id', bad))[0]);
    expect(r1.stage).toBe('validate');
    expect(r1.reason).toBe('amount: below min 0');
    expect(r1.topic).toBe('dbserver1.public.orders');
    expect(r1.value_raw).not.toBeNull();
    expect(r1.payload.row.amount).toBe('-5.00');
    const r2 = (await rejectsAt('order_id', badStatus))[0];
    expect(r2.reason).toMatch(/^status: not one of/);
    const inWarehouse = await warehouse().query('SELECT order_id FROM orders_fact WHERE order_id = ANY ($1::bigint[])', [[bad, badStatus]]);
    expect(inWarehouse.rowCount).toBe(0);
    // Analysts see that something was held back, without the raw payload.
    const summary = await warehouse().query('SELECT reason FROM rejected_events_summary WHERE id = $1', [r1.id]);
    expect(summary.rows[0].reason).toBe(r1.reason);
  });

  it('rejects a message that is not Avro at all, and the next change still arrives', async () => {
    const env = stackEnv();
    const kafka = new Kafka({ clientId: 'e2e-bad-input', brokers: env.KAFKA_BOOTSTRAP_SERVERS.split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const marker = `not avro ${Date.now()}`;
    const [meta] = await producer.send({ topic: 'dbserver1.public.orders', messages: [{ key: 'garbage', value: marker }] });
    await producer.disconnect();

    const c = customer();
    const good = await insert(c, 'After garbage', '1.50', 'pending');
    await waitFor('the row after the garbage', async () =>
      (await warehouse().query('SELECT 1 FROM orders_latest WHERE order_id = $1', [good])).rowCount === 1);
    const reject = await waitFor('the garbage rejected', async () => (await warehouse().query(
      'SELECT * FROM cdc.rejected_events WHERE topic = $1 AND partition = $2 AND "offset" = $3',
      ['dbserver1.public.orders', meta.partition, meta.baseOffset],
    )).rows[0]);
    expect(reject.stage).toBe('decode');
    expect(reject.reason).toMatch(/magic byte/);
    expect(Buffer.from(reject.value_raw).toString()).toBe(marker);
  });
});
