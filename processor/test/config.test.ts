import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError, loadConfig } from '../src/config';
import { authHeaders, credentialsFromEnv } from '../src/rest-auth';

const base = { WAREHOUSE_DATABASE_URL: 'postgres://processor:secret@127.0.0.1:15433/warehouse' };

describe('configuration', () => {
  it('has working defaults', () => {
    const { config, rules } = loadConfig(base);
    expect(config.kafka.topics).toEqual(['dbserver1.public.orders']);
    expect(config.batch.maxEvents).toBe(10000);
    expect(rules.orders.length).toBeGreaterThan(0);
  });

  it('reads lists and numbers from the environment', () => {
    const { config } = loadConfig({ ...base, PROCESSOR_TOPICS: 'a.b.c, d.e.f', BATCH_LINGER_MS: '20' });
    expect(config.kafka.topics).toEqual(['a.b.c', 'd.e.f']);
    expect(config.batch.lingerMs).toBe(20);
  });

  it.each([
    [{ BATCH_MAX_EVENTS: 'lots' }, /^batch\.maxEvents \(BATCH_MAX_EVENTS\): must be a positive integer/],
    [{ PROCESSOR_PORT: '99999' }, /^http\.port \(PROCESSOR_PORT\)/],
    [{ LOG_LEVEL: 'loud' }, /^log\.level \(LOG_LEVEL\)/],
    [{ WAREHOUSE_DATABASE_URL: '' }, /^warehouse\.url \(WAREHOUSE_DATABASE_URL\) is required/],
    [{ VALIDATION_RULES_FILE: '/nonexistent.json' }, /^rules\.file \(VALIDATION_RULES_FILE\)/],
    [{ PROCESSOR_CONFIG_FILE: '/nonexistent.json' }, /^config file \/nonexistent\.json \(PROCESSOR_CONFIG_FILE\) does not exist/],
  ])('stops with one line naming the culprit: %j', (env, message) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, ...env })).toThrow(message);
  });

  it('never shows a password in an error', () => {
    try {
      loadConfig({ WAREHOUSE_DATABASE_URL: 'not a url with secret' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect((err as Error).message).toMatch(/^warehouse\.url \(WAREHOUSE_DATABASE_URL\): must be a URL/);
      expect((err as Error).message).not.toContain('secret');
    }
  });

  it('follows Kafka Connect when CONNECT_URL is given and no topics were asked for', () => {
    const follow = loadConfig({ ...base, CONNECT_URL: 'http://127.0.0.1:18083', PROCESSOR_CONNECTORS: 'orders-source, shop2' }).config;
    expect(follow.connect).toEqual({ url: 'http://127.0.0.1:18083', connectors: ['orders-source', 'shop2'], pollMs: 3000, username: '', password: '', passwordFile: '', auth: null });
    expect(follow.naming.homePrefix).toBe('dbserver1');
    // A processor told its topics keeps them, even where the stack's environment names Connect.
    expect(loadConfig({ ...base, CONNECT_URL: 'http://127.0.0.1:18083', PROCESSOR_TOPICS: 'a.b.c' }).config.connect.url).toBe('');
    expect(loadConfig({ ...base, CONNECT_URL: 'http://127.0.0.1:18083', PROCESSOR_TOPIC_PATTERN: '^a' }).config.connect.url).toBe('');
    expect(() => loadConfig({ ...base, CONNECT_URL: 'nope' })).toThrow(/^connect\.url \(CONNECT_URL\): must be a URL/);
  });

  describe('REST credentials (Connect, schema registry)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdc-config-'));
    const file = path.join(dir, 'pw');
    fs.writeFileSync(file, 'from-file\nsecond line ignored\n', { mode: 0o600 });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('none by default: no Authorization header is sent', () => {
      const { config } = loadConfig(base);
      expect(config.connect.auth).toBeNull();
      expect(config.registry.auth).toBeNull();
      expect(authHeaders(config.registry.auth)).toEqual({});
    });

    it('reads a user with a password or a password file (its first line)', () => {
      const { config } = loadConfig({ ...base, CONNECT_USERNAME: 'admin', CONNECT_PASSWORD: 's3cret', SCHEMA_REGISTRY_USERNAME: 'reader', SCHEMA_REGISTRY_PASSWORD_FILE: file });
      expect(config.connect.auth).toEqual({ username: 'admin', password: 's3cret' });
      expect(config.registry.auth).toEqual({ username: 'reader', password: 'from-file' });
      expect(authHeaders(config.connect.auth)).toEqual({ Authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` });
    });

    it.each([
      [{ CONNECT_USERNAME: 'admin' }, /^connect\.username \(CONNECT_USERNAME\) is set but neither connect\.password \(CONNECT_PASSWORD\) nor connect\.passwordFile \(CONNECT_PASSWORD_FILE\)$/],
      [{ CONNECT_PASSWORD: 'x' }, /^connect\.password \(CONNECT_PASSWORD\) is set but connect\.username \(CONNECT_USERNAME\) is not$/],
      [{ SCHEMA_REGISTRY_PASSWORD_FILE: '/nonexistent' }, /^registry\.passwordFile \(SCHEMA_REGISTRY_PASSWORD_FILE\) is set but registry\.username/],
      [{ SCHEMA_REGISTRY_USERNAME: 'r', SCHEMA_REGISTRY_PASSWORD: 'x', SCHEMA_REGISTRY_PASSWORD_FILE: '/nonexistent' }, /^registry\.password \(SCHEMA_REGISTRY_PASSWORD\) and registry\.passwordFile \(SCHEMA_REGISTRY_PASSWORD_FILE\) are both set: give one$/],
      [{ SCHEMA_REGISTRY_USERNAME: 'r', SCHEMA_REGISTRY_PASSWORD_FILE: '/nonexistent/pw' }, /^registry\.passwordFile \(SCHEMA_REGISTRY_PASSWORD_FILE\): cannot read \/nonexistent\/pw: ENOENT$/],
    ])('refuses %j in one line naming the key', (env, message) => {
      expect(() => loadConfig({ ...base, ...env })).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, ...env })).toThrow(message);
    });

    it('an empty password file is refused', () => {
      const empty = path.join(dir, 'empty');
      fs.writeFileSync(empty, '');
      expect(() => loadConfig({ ...base, CONNECT_USERNAME: 'a', CONNECT_PASSWORD_FILE: empty })).toThrow(/^connect\.passwordFile \(CONNECT_PASSWORD_FILE\): .* is empty$/);
    });

    it('never shows the password in an error', () => {
      let message = '';
      try {
        loadConfig({ ...base, CONNECT_PASSWORD: 'do-not-print-me' });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/CONNECT_PASSWORD/);
      expect(message).not.toContain('do-not-print-me');
    });

    it('make env variables give the e2e and bench callers the same credentials', () => {
      expect(credentialsFromEnv({ CONNECT_USERNAME: 'a', CONNECT_PASSWORD: 'b' }, 'CONNECT')).toEqual({ username: 'a', password: 'b' });
      expect(credentialsFromEnv({ CONNECT_PASSWORD: 'b' }, 'CONNECT')).toBeNull();
      expect(credentialsFromEnv({ SCHEMA_REGISTRY_USERNAME: 'r', SCHEMA_REGISTRY_PASSWORD: 'p' }, 'SCHEMA_REGISTRY')).toEqual({ username: 'r', password: 'p' });
    });
  });
});
