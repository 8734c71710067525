import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError, loadConfig } from '../src/config';
import { kafkaAuthOptions, kafkaSecurityFromEnv } from '../src/kafka-options';

const base = { WAREHOUSE_DATABASE_URL: 'postgres://processor:secret@127.0.0.1:15433/warehouse' };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-options-'));
const ca = path.join(dir, 'ca.pem');
const pwFile = path.join(dir, 'password');
fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');
fs.writeFileSync(pwFile, 's3cret-from-file\nsecond line ignored\n', { mode: 0o600 });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const secured = { KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: ca, KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'processor', KAFKA_SASL_PASSWORD: 'p4ss' };

describe('Kafka client security options', () => {
  it('adds nothing for a plaintext Kafka (the default)', () => {
    expect(kafkaAuthOptions(kafkaSecurityFromEnv({}))).toEqual({});
    expect(kafkaAuthOptions(loadConfig(base).config.kafka)).toEqual({});
  });

  it('builds TLS with the CA file and SASL/SCRAM from the variables', () => {
    const opts = kafkaAuthOptions(kafkaSecurityFromEnv(secured));
    expect(opts.ssl).toEqual({ ca: [fs.readFileSync(ca, 'utf8')] });
    expect(opts.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'processor', password: 'p4ss' });
  });

  it('is the same from the processor config (convict keys kafka.ssl.*, kafka.sasl.*)', () => {
    const { config } = loadConfig({ ...base, ...secured });
    expect(config.kafka.ssl).toEqual({ enabled: true, caFile: ca });
    expect(kafkaAuthOptions(config.kafka)).toEqual(kafkaAuthOptions(kafkaSecurityFromEnv(secured)));
  });

  it('trusts the system CAs with TLS and no CA file; PLAIN and SCRAM-SHA-256 too', () => {
    expect(kafkaAuthOptions(kafkaSecurityFromEnv({ KAFKA_SSL: 'true' }))).toEqual({ ssl: true });
    expect(kafkaAuthOptions(kafkaSecurityFromEnv({ ...secured, KAFKA_SASL_MECHANISM: 'plain' })).sasl?.mechanism).toBe('plain');
    expect(kafkaAuthOptions(kafkaSecurityFromEnv({ ...secured, KAFKA_SASL_MECHANISM: 'scram-sha-256' })).sasl?.mechanism).toBe('scram-sha-256');
  });

  it('reads the password from a file (its first line)', () => {
    const { KAFKA_SASL_PASSWORD: _, ...rest } = secured;
    const { config } = loadConfig({ ...base, ...rest, KAFKA_SASL_PASSWORD_FILE: pwFile });
    expect(config.kafka.sasl.password).toBe('s3cret-from-file');
    expect(kafkaAuthOptions(config.kafka).sasl).toEqual({ mechanism: 'scram-sha-512', username: 'processor', password: 's3cret-from-file' });
  });

  it.each([
    [{ KAFKA_SASL_MECHANISM: 'gssapi' }, /^kafka\.sasl\.mechanism \(KAFKA_SASL_MECHANISM\): must be one of/],
    [{ KAFKA_SASL_PASSWORD: '' }, /^kafka\.sasl\.password \(KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE\) is required when kafka\.sasl\.mechanism is set$/],
    [{ KAFKA_SASL_USERNAME: '' }, /^kafka\.sasl\.username \(KAFKA_SASL_USERNAME\) is required when kafka\.sasl\.mechanism is set$/],
    [{ KAFKA_SASL_MECHANISM: '' }, /^kafka\.sasl\.mechanism \(KAFKA_SASL_MECHANISM\) is required when a SASL user name or password is given$/],
    [{ KAFKA_SASL_PASSWORD_FILE: '/nonexistent/pw' }, /^kafka\.sasl\.password \(KAFKA_SASL_PASSWORD\) and kafka\.sasl\.passwordFile \(KAFKA_SASL_PASSWORD_FILE\): give one, not both$/],
    [{ KAFKA_SASL_PASSWORD: '', KAFKA_SASL_PASSWORD_FILE: '/nonexistent/pw' }, /^kafka\.sasl\.passwordFile \(KAFKA_SASL_PASSWORD_FILE\): cannot read \/nonexistent\/pw$/],
    [{ KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' }, /^kafka\.ssl\.caFile \(KAFKA_SSL_CA_FILE\): cannot read \/nonexistent\/ca\.pem$/],
    [{ KAFKA_SSL: 'false' }, /^kafka\.ssl\.caFile \(KAFKA_SSL_CA_FILE\) is set but kafka\.ssl\.enabled \(KAFKA_SSL\) is not true$/],
  ])('stops with one line naming the culprit: %j', (env, message) => {
    const all = { ...base, ...secured, ...env };
    expect(() => loadConfig(all)).toThrow(ConfigError);
    expect(() => loadConfig(all)).toThrow(message);
    // The other clients (seed, bench, e2e, infra scripts) say the same.
    expect(() => kafkaAuthOptions(kafkaSecurityFromEnv(all))).toThrow(message);
  });

  it('never shows the password: not in an error, not in the printed config', () => {
    const { config } = loadConfig({ ...base, ...secured, KAFKA_SASL_PASSWORD: 'sup3rs3cret' });
    expect(config.kafka.sasl.password).toBe('sup3rs3cret');
    for (const env of [{ KAFKA_SASL_USERNAME: '' }, { KAFKA_SASL_MECHANISM: 'nope' }]) {
      expect(() => loadConfig({ ...base, ...secured, KAFKA_SASL_PASSWORD: 'sup3rs3cret', ...env })).toThrow(/^kafka\./);
      try {
        loadConfig({ ...base, ...secured, KAFKA_SASL_PASSWORD: 'sup3rs3cret', ...env });
      } catch (err) {
        expect((err as Error).message).not.toContain('sup3rs3cret');
      }
    }
  });
});
