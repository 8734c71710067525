// How every Kafka client of this repository authenticates: the processor (through its convict
// keys), seed/verify, bench, the e2e tests and the infra scripts (through the same environment
// variables, compiled to dist/). One place, so a secured broker needs no change in any caller.
import * as fs from 'fs';
import convict from 'convict';
import { Kafka, type KafkaConfig, type SASLOptions } from 'kafkajs';

export const SASL_MECHANISMS = ['', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

export interface KafkaSecurity {
  ssl: { enabled: boolean; caFile: string };
  sasl: { mechanism: SaslMechanism; username: string; password: string; passwordFile: string };
}

/** The convict keys under `kafka.` (processor/src/config.ts mounts them; kafkaSecurityFromEnv reads them alone). */
export const kafkaSecuritySchema = {
  ssl: {
    enabled: { doc: 'Connect to Kafka over TLS.', format: Boolean, default: false, env: 'KAFKA_SSL' },
    caFile: { doc: "PEM file of the CA(s) that signed the brokers' certificates; empty: the system's CAs.", format: String, default: '', env: 'KAFKA_SSL_CA_FILE' },
  },
  sasl: {
    mechanism: { doc: 'SASL mechanism (plain, scram-sha-256, scram-sha-512); empty: no SASL.', format: [...SASL_MECHANISMS], default: '' as SaslMechanism, env: 'KAFKA_SASL_MECHANISM' },
    username: { doc: 'SASL user name.', format: String, default: '', env: 'KAFKA_SASL_USERNAME' },
    password: { doc: 'SASL password (or kafka.sasl.passwordFile).', format: String, default: '', env: 'KAFKA_SASL_PASSWORD', sensitive: true },
    passwordFile: { doc: 'File holding the SASL password (its first line), instead of kafka.sasl.password.', format: String, default: '', env: 'KAFKA_SASL_PASSWORD_FILE' },
  },
};

/**
 * Checks the settings and resolves the password file into `sasl.password`.
 * Throws an Error whose message is one line naming the key and its variable.
 */
export function resolveKafkaSecurity(sec: KafkaSecurity): KafkaSecurity {
  const out: KafkaSecurity = { ssl: { ...sec.ssl }, sasl: { ...sec.sasl } };
  const { sasl, ssl } = out;
  if (ssl.caFile) {
    if (!ssl.enabled) throw new Error('kafka.ssl.caFile (KAFKA_SSL_CA_FILE) is set but kafka.ssl.enabled (KAFKA_SSL) is not true');
    try {
      fs.accessSync(ssl.caFile, fs.constants.R_OK);
    } catch {
      throw new Error(`kafka.ssl.caFile (KAFKA_SSL_CA_FILE): cannot read ${ssl.caFile}`);
    }
  }
  if (!sasl.mechanism) {
    if (sasl.username || sasl.password || sasl.passwordFile) {
      throw new Error('kafka.sasl.mechanism (KAFKA_SASL_MECHANISM) is required when a SASL user name or password is given');
    }
    return out;
  }
  if (!sasl.username) throw new Error('kafka.sasl.username (KAFKA_SASL_USERNAME) is required when kafka.sasl.mechanism is set');
  if (sasl.password && sasl.passwordFile) {
    throw new Error('kafka.sasl.password (KAFKA_SASL_PASSWORD) and kafka.sasl.passwordFile (KAFKA_SASL_PASSWORD_FILE): give one, not both');
  }
  if (sasl.passwordFile) {
    let text: string;
    try {
      text = fs.readFileSync(sasl.passwordFile, 'utf8');
    } catch {
      throw new Error(`kafka.sasl.passwordFile (KAFKA_SASL_PASSWORD_FILE): cannot read ${sasl.passwordFile}`);
    }
    sasl.password = text.split(/\r?\n/)[0];
    sasl.passwordFile = '';
  }
  if (!sasl.password) throw new Error('kafka.sasl.password (KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE) is required when kafka.sasl.mechanism is set');
  return out;
}

/** The `ssl` and `sasl` options of a kafkajs client (none of them for a plaintext broker). */
export function kafkaAuthOptions(sec: KafkaSecurity): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const r = resolveKafkaSecurity(sec);
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (r.ssl.enabled) out.ssl = r.ssl.caFile ? { ca: [fs.readFileSync(r.ssl.caFile, 'utf8')] } : true;
  if (r.sasl.mechanism) {
    out.sasl = { mechanism: r.sasl.mechanism, username: r.sasl.username, password: r.sasl.password } as SASLOptions;
  }
  return out;
}

/** The settings from the environment variables alone (for the callers without a config of their own). */
export function kafkaSecurityFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const c = convict(kafkaSecuritySchema, { env, args: [] });
  try {
    c.validate({ allowed: 'strict' });
  } catch (err) {
    // convict names the key; the variable is what a user sets.
    const line = (err as Error).message.split('\n')[0].replace(/: value was .*$/, '');
    const key = /^([\w.]+):/.exec(line)?.[1] ?? '';
    const v = key.split('.').reduce((n: any, p) => n?.[p], kafkaSecuritySchema)?.env;
    throw new Error(v ? line.replace(key, `kafka.${key} (${v})`) : line);
  }
  return c.getProperties() as KafkaSecurity;
}

/** A kafkajs client for `config` with the security of the environment (KAFKA_SSL, KAFKA_SASL_*). */
export function kafkaClient(config: Omit<KafkaConfig, 'ssl' | 'sasl'>, env: NodeJS.ProcessEnv = process.env): Kafka {
  return new Kafka({ ...config, ...kafkaAuthOptions(kafkaSecurityFromEnv(env)) });
}
