// Bad data never stops the stream and is never dropped silently: it lands in
// cdc.rejected_events with its reason, and good rows keep flowing. The test has a table, a
// connector, a processor and rules of its own, so the user's orders never hold test rejects.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClient } from '../processor/src/kafka-options';
import { spawnSync } from 'child_process';
import { REPO, closeAll, source, stackEnv, warehouse, waitFor } from './lib/stack';
import { captureTable, type CapturedTable } from './lib/processes';

const table = `e2e_bad_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
let captured: CapturedTable | null = null;
let topic = '';
const rulesFile = path.join(os.tmpdir(), `${table}-rules.json`);

beforeAll(async () => {
  await source().query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, product_name text NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL)`);
  fs.writeFileSync(rulesFile, JSON.stringify({
    [table]: [
      { column: 'amount', rule: 'min', value: '0' },
      { column: 'status', rule: 'oneOf', values: ['pending', 'paid', 'shipped'] },
    ],
  }));
  captured = await captureTable(table, 'bad', { processorEnv: { VALIDATION_RULES_FILE: rulesFile } });
  topic = `${captured.prefix}.public.${table}`;
});

afterAll(async () => {
  await captured?.teardown();
  await source().query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  fs.rmSync(rulesFile, { force: true });
  await closeAll();
});

async function insert(product: string, amount: string, status: string): Promise<string> {
  const r = await source().query(`INSERT INTO ${table} (product_name, amount, status) VALUES ($1, $2::numeric, $3) RETURNING id`, [product, amount, status]);
  return r.rows[0].id;
}

const rejectsOf = async (id: string) =>
  (await warehouse().query(`SELECT * FROM cdc.rejected_events WHERE topic = $1 AND payload->'row'->>'id' = $2 ORDER BY id`, [topic, id])).rows;
const landed = async (id: string) => (await warehouse().query(`SELECT 1 FROM "${table}_latest" WHERE id = $1`, [id])).rowCount === 1;

describe('bad input', () => {
  it('rejects a row that breaks a rule, with its reason, while good rows keep flowing', async () => {
    const bad = await insert('Refund?', '-5.00', 'pending');
    const badStatus = await insert('Lost parcel', '3.00', 'lost');
    const good = await insert('Good one', '7.00', 'paid');
    await waitFor('the good row', () => landed(good));
    const r1 = await waitFor('the negative amount rejected', async () => (await rejectsOf(bad))[0]);
    expect(r1.stage).toBe('validate');
    // The reason names the column and the rule; the value itself stays in the payload.
    expect(r1.reason).toMatch(/amount/);
    expect(r1.reason).toMatch(/min/);
    expect(r1.topic).toBe(topic);
    expect(r1.value_raw).not.toBeNull();
    expect(r1.payload.row.amount).toBe('-5.00');
    // Another key, maybe on the other partition: waited for on its own.
    const r2 = await waitFor('the unknown status rejected', async () => (await rejectsOf(badStatus))[0]);
    expect(r2.reason).toMatch(/status/);
    const inWarehouse = await warehouse().query(`SELECT id FROM "${table}_fact" WHERE id = ANY ($1::bigint[])`, [[bad, badStatus]]);
    expect(inWarehouse.rowCount).toBe(0);
    // Analysts see that something was held back, without the raw payload.
    const summary = await warehouse().query('SELECT reason FROM rejected_events_summary WHERE id = $1', [r1.id]);
    expect(summary.rows[0].reason).toBe(r1.reason);
    // And make status counts what was held back in the last hour (other tests' rejects may rank higher).
    const status = spawnSync('bash', [path.join(REPO, 'infra/status.sh')], { cwd: REPO, encoding: 'utf8', timeout: 60_000 }).stdout;
    expect(status).toMatch(/^rejected events: [\d,]+( or more)? in the last hour \(.+\); see public\.rejected_events_summary$/m);
  });

  it('rejects a message that is not Avro at all, and the next change still arrives', async () => {
    const env = stackEnv();
    const kafka = kafkaClient({ clientId: 'e2e-bad-input', brokers: env.KAFKA_BOOTSTRAP_SERVERS.split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const marker = `not avro ${Date.now()}`;
    const [meta] = await producer.send({ topic, messages: [{ key: 'garbage', value: marker }] });
    await producer.disconnect();

    const good = await insert('After garbage', '1.50', 'pending');
    await waitFor('the row after the garbage', () => landed(good));
    const reject = await waitFor('the garbage rejected', async () => (await warehouse().query(
      'SELECT * FROM cdc.rejected_events WHERE topic = $1 AND partition = $2 AND "offset" = $3',
      [topic, meta.partition, meta.baseOffset],
    )).rows[0]);
    expect(reject.stage).toBe('decode');
    expect(reject.reason).toMatch(/magic byte/);
    expect(Buffer.from(reject.value_raw).toString()).toBe(marker);
  });
});
