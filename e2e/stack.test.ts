// The stack `make up` starts: every endpoint in `make env`, the connector RUNNING, schemas in the
// registry, and a change event read from Kafka and decoded with @kafkajs/confluent-schema-registry.
import * as fs from 'fs';
import * as path from 'path';
import { closeAll, connectHeaders, registryHeaders, run, source, stackEnv, waitFor } from './lib/stack';

afterAll(closeAll);

describe('the stack', () => {
  it('make env names every endpoint', () => {
    const env = stackEnv();
    for (const key of ['SOURCE_DATABASE_URL', 'WAREHOUSE_DATABASE_URL', 'ANALYST_DATABASE_URL', 'KAFKA_BOOTSTRAP_SERVERS', 'CONNECT_URL', 'SCHEMA_REGISTRY_URL', 'PROCESSOR_URL']) {
      expect(env[key]).toMatch(/\S/);
    }
    expect(env.SCHEMA_REGISTRY_URL).toMatch(/\/apis\/ccompat\/v7$/);
  });

  it('runs the orders connector and its task', async () => {
    const status = await waitFor('connector RUNNING', async () => {
      const s = (await (await fetch(`${stackEnv().CONNECT_URL}/connectors/orders-source/status`, { headers: connectHeaders() })).json()) as any;
      return s.connector?.state === 'RUNNING' && s.tasks?.[0]?.state === 'RUNNING' ? s : null;
    }, 60_000, 500);
    expect(status.tasks).toHaveLength(1);
  });

  it('decodes a change event from Kafka with exact amounts, and registers its schemas', () => {
    for (const amount of ['0.01', '9999999999.99']) {
      const out = run('node', ['infra/smoke-decode.js', amount], 60_000);
      expect(out).toMatch(new RegExp(`^OK: order \\d+ amount ${amount.replace('.', '\\.')} \\(inserted ${amount.replace('.', '\\.')}\\)`, 'm'));
    }
  });

  it('lists the orders subjects in the registry', async () => {
    await source().query("INSERT INTO orders (customer_id, product_name, amount, status) VALUES (1, 'subject check', 1.00, 'paid')");
    const subjects = await waitFor('the orders subjects', async () => {
      const s = (await (await fetch(`${stackEnv().SCHEMA_REGISTRY_URL}/subjects`, { headers: registryHeaders() })).json()) as string[];
      return s.includes('dbserver1.public.orders-value') ? s : null;
    });
    expect(subjects).toContain('dbserver1.public.orders-key');
  });

  it('the analyst role reads the warehouse and cannot write it', async () => {
    const { Client } = await import('pg');
    const c = new Client({ connectionString: stackEnv().ANALYST_DATABASE_URL });
    await c.connect();
    try {
      expect((await c.query('SELECT count(*) FROM orders_latest')).rowCount).toBe(1);
      await expect(c.query('DELETE FROM orders_latest')).rejects.toThrow(/read-only transaction|permission denied/);
      await expect(c.query('SELECT * FROM cdc.offsets')).rejects.toThrow(/permission denied/);
    } finally {
      await c.end();
    }
  });

  it('moves a log past LOG_ROTATE_MB aside when its component starts, and the component runs on', async () => {
    // A stack restarted for months must not fill its disk with one ever-growing log.
    const log = path.join(stackEnv().LOG_DIR, 'processor.log');
    const marker = `rotation-test ${Date.now()}`;
    fs.appendFileSync(log, `${`${marker} ${'x'.repeat(1000)}\n`.repeat(1100)}`); // ~1.1 MB
    const out = run('bash', ['-c', 'LOG_ROTATE_MB=1 bash infra/processor.sh restart 2>&1'], 120_000);
    expect(out).toMatch(/rotated processor\.log \(\d+ MB, over LOG_ROTATE_MB=1\) to processor\.log\.1/);
    expect(fs.readFileSync(`${log}.1`, 'utf8')).toContain(marker);
    expect(fs.readFileSync(log, 'utf8')).not.toContain(marker);
    await waitFor('the processor healthy after the restart', async () => (await fetch(`${stackEnv().PROCESSOR_URL}/health`).catch(() => null))?.ok ?? false, 60_000, 200);
    // A log under the limit stays where it is.
    const small = run('bash', ['-c', 'LOG_ROTATE_MB=1 bash infra/processor.sh restart 2>&1'], 120_000);
    expect(small).not.toMatch(/rotated/);
    await waitFor('the processor healthy again', async () => (await fetch(`${stackEnv().PROCESSOR_URL}/health`).catch(() => null))?.ok ?? false, 60_000, 200);
  }, 300_000);
});
