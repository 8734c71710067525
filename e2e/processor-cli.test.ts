// Bad configuration stops the processor at once with one line naming the culprit, and exit 2.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { REPO, stackEnv } from './lib/stack';
import { freePort } from './lib/processes';

function runProcessor(env: Record<string, string>) {
  const r = spawnSync('node', [path.join(REPO, 'dist/processor/src/main.js')], {
    env: { PATH: process.env.PATH!, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stderr: r.stderr.trim(), stdout: r.stdout.trim() };
}

describe('processor start-up errors', () => {
  const good = () => ({ WAREHOUSE_DATABASE_URL: stackEnv().WAREHOUSE_DATABASE_URL });

  it.each([
    [{ BATCH_MAX_EVENTS: 'lots' }, /^processor: batch\.maxEvents \(BATCH_MAX_EVENTS\): must be a positive integer/],
    [{ VALIDATION_RULES_FILE: '/no/such/rules.json' }, /^processor: rules\.file \(VALIDATION_RULES_FILE\): .*no such file/],
    [{ WAREHOUSE_DATABASE_URL: 'postgres://processor:hunter2@127.0.0.1:1/warehouse' }, /^processor: warehouse postgres:\/\/processor:\*\*\*@127\.0\.0\.1:1\/warehouse \(WAREHOUSE_DATABASE_URL\) is unreachable/],
  ])('%j', (env, message) => {
    const r = runProcessor({ ...good(), ...env });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr + r.stdout).not.toContain('hunter2');
  });

  // Following capture (CONNECT_URL), Kafka is first met when the topics are listed: its error names
  // a host and port only, so the line must say which setting holds them.
  it('names KAFKA_BOOTSTRAP_SERVERS when Kafka is not there', async () => {
    const r = runProcessor({ ...stackEnv(), KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1', PROCESSOR_PORT: String(await freePort()) });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^processor: Kafka at 127\.0\.0\.1:1 \(KAFKA_BOOTSTRAP_SERVERS\): Connection error: connect ECONNREFUSED/);
  });

  it('names a port that is already taken', () => {
    const port = new URL(stackEnv().PROCESSOR_URL).port;
    const r = runProcessor({ ...good(), PROCESSOR_PORT: port });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`processor: port ${port} (PROCESSOR_PORT) is already in use`);
  });
});
