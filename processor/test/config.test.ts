import { ConfigError, loadConfig } from '../src/config';

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
    expect(follow.connect).toEqual({ url: 'http://127.0.0.1:18083', connectors: ['orders-source', 'shop2'], pollMs: 3000 });
    expect(follow.naming.homePrefix).toBe('dbserver1');
    // A processor told its topics keeps them, even where the stack's environment names Connect.
    expect(loadConfig({ ...base, CONNECT_URL: 'http://127.0.0.1:18083', PROCESSOR_TOPICS: 'a.b.c' }).config.connect.url).toBe('');
    expect(loadConfig({ ...base, CONNECT_URL: 'http://127.0.0.1:18083', PROCESSOR_TOPIC_PATTERN: '^a' }).config.connect.url).toBe('');
    expect(() => loadConfig({ ...base, CONNECT_URL: 'nope' })).toThrow(/^connect\.url \(CONNECT_URL\): must be a URL/);
  });
});
