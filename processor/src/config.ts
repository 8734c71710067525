// Configuration: defaults < optional file (PROCESSOR_CONFIG_FILE) < environment variables.
// A bad value stops the start with one line naming the key and its variable.
import convict from 'convict';
import * as fs from 'fs';
import * as path from 'path';
import { kafkaSecuritySchema, resolveKafkaSecurity, type KafkaSecurity } from './kafka-options';
import { parseRules, type Rules } from './validate';
import { resolveCredentials, type BasicCredentials } from './rest-auth';

const REPO_ROOT = path.resolve(__dirname, fs.existsSync(path.resolve(__dirname, '../../package.json')) ? '../..' : '../../..');

convict.addFormat({
  name: 'positive-int',
  validate: (v: unknown) => {
    if (!Number.isInteger(v) || (v as number) <= 0) throw new Error('must be a positive integer');
  },
  coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
});
convict.addFormat({
  name: 'url-string',
  validate: (v: unknown) => {
    if (v === '') return; // "required" is checked after loading, with its own message
    try {
      new URL(String(v));
    } catch {
      throw new Error('must be a URL');
    }
  },
});
convict.addFormat({
  name: 'list',
  validate: (v: unknown) => {
    if (!Array.isArray(v)) throw new Error('must be a comma-separated list');
  },
  coerce: (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
});

const schema = {
  warehouse: {
    url: { doc: 'Warehouse connection URL (the processor role).', format: 'url-string', default: '', env: 'WAREHOUSE_DATABASE_URL', sensitive: true },
  },
  kafka: {
    brokers: { doc: 'Kafka bootstrap servers.', format: 'list', default: ['127.0.0.1:19092'], env: 'KAFKA_BOOTSTRAP_SERVERS' },
    groupId: { doc: 'Consumer group; also the key of the offsets stored in the warehouse.', format: String, default: 'cdc-warehouse', env: 'PROCESSOR_GROUP_ID' },
    clientId: { doc: 'Kafka client id.', format: String, default: 'cdc-processor', env: 'PROCESSOR_CLIENT_ID' },
    topics: { doc: 'Debezium topics to load (comma-separated).', format: 'list', default: ['dbserver1.public.orders'], env: 'PROCESSOR_TOPICS' },
    topicPattern: { doc: 'A regular expression of topics to load instead of the list (matched at start).', format: String, default: '', env: 'PROCESSOR_TOPIC_PATTERN' },
    // TLS and SASL (kafka.ssl.*, kafka.sasl.*): processor/src/kafka-options.ts, shared with every other client.
    ...kafkaSecuritySchema,
  },
  source: {
    monitorUrl: { doc: 'Source PostgreSQL, read-only monitoring role: replication slot metrics on /metrics (optional).', format: 'url-string', default: '', env: 'SOURCE_MONITOR_URL', sensitive: true },
  },
  connect: {
    // Optional: with it the processor follows the connectors' capture (tables added to or removed
    // from table.include.list) instead of a fixed topic list. PROCESSOR_TOPICS or
    // PROCESSOR_TOPIC_PATTERN, when given, still win (a processor told its topics keeps them).
    url: { doc: 'Kafka Connect REST URL: load the change topics of its Debezium connectors, following changes.', format: 'url-string', default: '', env: 'CONNECT_URL' },
    connectors: { doc: 'Connector names to follow (comma-separated); empty: every Debezium PostgreSQL connector.', format: 'list', default: [] as string[], env: 'PROCESSOR_CONNECTORS' },
    pollMs: { doc: 'How often Connect and the Kafka topic list are read.', format: 'positive-int', default: 3000, env: 'CONNECT_POLL_MS' },
    // A Connect REST API behind HTTP basic authentication (SECURITY=on: Kafka's basic-auth extension).
    username: { doc: 'Kafka Connect REST user (HTTP basic authentication); empty: none.', format: String, default: '', env: 'CONNECT_USERNAME' },
    password: { doc: 'Kafka Connect REST password.', format: String, default: '', env: 'CONNECT_PASSWORD', sensitive: true },
    passwordFile: { doc: 'A file whose first line is the Kafka Connect REST password (instead of connect.password).', format: String, default: '', env: 'CONNECT_PASSWORD_FILE' },
  },
  naming: {
    homePrefix: { doc: 'Topic prefix whose tables keep plain names (<table>, <schema>_<table>); other prefixes are <prefix>_<schema>_<table>.', format: String, default: 'dbserver1', env: 'WAREHOUSE_HOME_PREFIX' },
  },
  registry: {
    url: { doc: 'Confluent-compatible schema registry base URL.', format: 'url-string', default: 'http://127.0.0.1:18080/apis/ccompat/v7', env: 'SCHEMA_REGISTRY_URL' },
    // A registry behind HTTP basic authentication (SECURITY=on): the processor only reads schemas,
    // so a read-only user is enough (sr-readonly on the local Apicurio Registry).
    username: { doc: 'Schema registry user (HTTP basic authentication); empty: none.', format: String, default: '', env: 'SCHEMA_REGISTRY_USERNAME' },
    password: { doc: 'Schema registry password.', format: String, default: '', env: 'SCHEMA_REGISTRY_PASSWORD', sensitive: true },
    passwordFile: { doc: 'A file whose first line is the schema registry password (instead of registry.password).', format: String, default: '', env: 'SCHEMA_REGISTRY_PASSWORD_FILE' },
  },
  batch: {
    maxEvents: { doc: 'Flush a batch at this many events.', format: 'positive-int', default: 10000, env: 'BATCH_MAX_EVENTS' },
    maxBytes: { doc: 'Flush a batch at this many bytes of messages.', format: 'positive-int', default: 16 * 1024 * 1024, env: 'BATCH_MAX_BYTES' },
    // Short: a batch that fills while the previous one is being written goes out as soon as that
    // write ends, so batches grow with the load and a lone change waits only this long.
    lingerMs: { doc: 'Flush a batch this long after its first event at the latest.', format: 'positive-int', default: 5, env: 'BATCH_LINGER_MS' },
    lanes: { doc: 'Batches written side by side, each on its own connection; a partition always goes to the same one.', format: 'positive-int', default: 2, env: 'WRITER_LANES' },
  },
  apply: {
    mode: {
      doc: "'transaction': a change made in a source transaction reaches <table>_latest and _history with its whole transaction, when the consistency watermark passes it (sources whose connector has provide.transaction.metadata and whose <prefix>.transaction topic this processor reads). 'event': each change as soon as its batch commits.",
      format: ['transaction', 'event'], default: 'transaction', env: 'APPLY_MODE',
    },
    stepGapMs: {
      doc: 'In transaction mode, the least time between two watermark steps after batches, and never less than the last step took (each step makes whole transactions visible; more steps cost warehouse CPU).',
      format: 'nat', default: 5, env: 'APPLY_STEP_GAP_MS',
    },
    slowStepMs: {
      doc: 'A watermark step still running after this long is logged as a warning (again at every multiple), naming what it waits for; it is not cut: a catch-up over many transactions may take seconds.',
      format: 'positive-int', default: 30000, env: 'APPLY_SLOW_STEP_WARN_MS',
    },
    stallMs: {
      doc: 'A consistency watermark that has not moved for this long while transactions wait beyond it is logged as a warning (again at every multiple), with what it waits for (pipeline_status.waiting_for).',
      format: 'positive-int', default: 60000, env: 'APPLY_STALL_WARN_MS',
    },
  },
  retry: {
    maxBackoffMs: { doc: 'Longest wait between two attempts to write a batch.', format: 'positive-int', default: 10000, env: 'RETRY_MAX_BACKOFF_MS' },
  },
  http: {
    host: { doc: 'Address of the health and metrics endpoint.', format: String, default: '127.0.0.1', env: 'PROCESSOR_HOST' },
    port: { doc: 'Port of the health and metrics endpoint.', format: 'port', default: 18090, env: 'PROCESSOR_PORT' },
  },
  log: {
    level: { doc: 'Log level.', format: ['debug', 'info', 'warn', 'error'], default: 'info', env: 'LOG_LEVEL' },
  },
  rules: {
    file: { doc: 'Validation rules (JSON: table → rules).', format: String, default: path.join(REPO_ROOT, 'processor/rules.json'), env: 'VALIDATION_RULES_FILE' },
  },
  placeholder: {
    doc: "Debezium's unavailable.value.placeholder (unchanged TOASTed values).", format: String, default: '__debezium_unavailable_value', env: 'UNAVAILABLE_VALUE_PLACEHOLDER',
  },
};

export interface Config {
  warehouse: { url: string };
  kafka: { brokers: string[]; groupId: string; clientId: string; topics: string[]; topicPattern: string } & KafkaSecurity;
  source: { monitorUrl: string };
  connect: { url: string; connectors: string[]; pollMs: number; username: string; password: string; passwordFile: string; auth: BasicCredentials | null };
  naming: { homePrefix: string };
  registry: { url: string; username: string; password: string; passwordFile: string; auth: BasicCredentials | null };
  batch: { maxEvents: number; maxBytes: number; lingerMs: number; lanes: number };
  apply: { mode: 'transaction' | 'event'; stepGapMs: number; slowStepMs: number; stallMs: number };
  retry: { maxBackoffMs: number };
  http: { host: string; port: number };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  rules: { file: string };
  placeholder: string;
}

export class ConfigError extends Error {}

/** Loads and validates the configuration; throws ConfigError with one line naming the culprit. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): { config: Config; rules: Rules } {
  const c = convict(schema, { env, args: [] });
  const file = env.PROCESSOR_CONFIG_FILE;
  if (file) {
    if (!fs.existsSync(file)) throw new ConfigError(`config file ${file} (PROCESSOR_CONFIG_FILE) does not exist`);
    try {
      c.loadFile(file);
    } catch (err) {
      throw new ConfigError(`config file ${file} (PROCESSOR_CONFIG_FILE): ${(err as Error).message}`);
    }
  }
  try {
    c.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(firstLine(err as Error, env));
  }
  const config = c.getProperties() as Config;
  if (!config.warehouse.url) throw new ConfigError('warehouse.url (WAREHOUSE_DATABASE_URL) is required');
  try {
    Object.assign(config.kafka, resolveKafkaSecurity(config.kafka));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (config.kafka.topicPattern) {
    try {
      new RegExp(config.kafka.topicPattern);
    } catch (err) {
      throw new ConfigError(`kafka.topicPattern (PROCESSOR_TOPIC_PATTERN): ${(err as Error).message}`);
    }
  }
  try {
    config.connect.auth = resolveCredentials('connect', { username: 'CONNECT_USERNAME', password: 'CONNECT_PASSWORD', passwordFile: 'CONNECT_PASSWORD_FILE' }, config.connect);
    config.registry.auth = resolveCredentials('registry', { username: 'SCHEMA_REGISTRY_USERNAME', password: 'SCHEMA_REGISTRY_PASSWORD', passwordFile: 'SCHEMA_REGISTRY_PASSWORD_FILE' }, config.registry);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  // Following Connect replaces the fixed topics only where no topics were asked for explicitly.
  if (config.connect.url && (topicsGiven(env, file) || config.kafka.topicPattern)) config.connect.url = '';
  let rules: Rules;
  try {
    rules = parseRules(JSON.parse(fs.readFileSync(config.rules.file, 'utf8')), config.rules.file);
  } catch (err) {
    throw new ConfigError(`rules.file (VALIDATION_RULES_FILE): ${(err as Error).message}`);
  }
  return { config, rules };
}

/** Whether PROCESSOR_TOPICS (or kafka.topics in the config file) was set rather than defaulted. */
function topicsGiven(env: NodeJS.ProcessEnv, file: string | undefined): boolean {
  if (env.PROCESSOR_TOPICS !== undefined) return true;
  if (!file) return false;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'))?.kafka?.topics !== undefined;
  } catch {
    return false;
  }
}

/** convict lists every problem on its own line; the first, with its variable, is the culprit to show. */
function firstLine(err: Error, env: NodeJS.ProcessEnv): string {
  const line = err.message.split('\n')[0];
  const key = /^([\w.]+):/.exec(line)?.[1];
  const variable = key ? envName(key) : undefined;
  const shown = variable && env[variable] !== undefined && !/url/i.test(key!) ? line : line.replace(/: value was .*$/, '');
  return variable ? shown.replace(key!, `${key} (${variable})`) : shown;
}

function envName(key: string): string | undefined {
  let node: any = schema;
  for (const part of key.split('.')) node = node?.[part];
  return node?.env;
}
