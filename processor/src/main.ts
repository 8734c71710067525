// Entry point: configuration, pre-flight checks with clear errors, then the pipeline.
import { Pool } from 'pg';
import { CaptureFollower, requestResnapshot } from './capture';
import { CapturedTables } from './captured-tables';
import { ConfigError, loadConfig } from './config';
import { RegistryRefusedError } from './errors';
import { Decoder } from './decode';
import { startHttp } from './http';
import { kafkaAuthOptions } from './kafka-options';
import { createLogger, redactUrl, type Logger } from './log';
import { addSlotMetrics, createMetrics } from './metrics';
import { readSlots } from './slots';
import { readOffset } from './offsets';
import { Pipeline } from './pipeline';
import { RegistrySchemas } from './registry';
import { isTransactionTopic, setHomePrefix } from './topics';
import { startConsistency } from './consistency';
import { WarehouseWriter } from './writer';

function fail(message: string, code = 2): never {
  process.stderr.write(`processor: ${message}\n`);
  process.exit(code);
}

/** One warehouse session per concern: a pool of one reconnects by itself after an outage. */
function sessionPool(url: string, application: string, what: string, log: Logger): Pool {
  const pool = new Pool({ connectionString: url, application_name: application, max: 1 });
  pool.on('error', (err) => log.warn(`${what} connection lost`, { error: err }));
  return pool;
}

/** The warehouse must be reachable and migrated before anything is consumed. */
async function checkWarehouse(url: string, log: Logger): Promise<Pool> {
  // Reading positions reconnects by itself after the warehouse was away.
  const pool = sessionPool(url, 'cdc-processor-offsets', 'offsets', log);
  let ok: boolean;
  try {
    ok = (await pool.query("SELECT to_regclass('cdc.offsets') IS NOT NULL AS ok")).rows[0].ok;
  } catch (err) {
    fail(`warehouse ${redactUrl(url)} (WAREHOUSE_DATABASE_URL) is unreachable: ${(err as Error).message}`);
  }
  if (!ok) fail('warehouse has no table cdc.offsets: apply warehouse-migrations/ first (make up does)');
  return pool;
}

/** cdc.captured_tables (migration 0004): names checked for collisions, snapshots recorded. */
async function hasCapturedTables(pool: Pool): Promise<boolean> {
  return (await pool.query("SELECT to_regclass('cdc.captured_tables') IS NOT NULL AS ok")).rows[0].ok;
}

/** A captured table without a primary key has no key schema: say so at start, not per event. */
async function reportTablesWithoutKey(schemas: RegistrySchemas, topics: string[], log: Logger): Promise<void> {
  try {
    const subjects = new Set(await schemas.subjects());
    for (const t of topics) {
      if (subjects.has(`${t}-value`) && !subjects.has(`${t}-key`)) {
        log.error('captured table has no primary key: its events go to cdc.rejected_events', { topic: t });
      }
    }
  } catch (err) {
    // Wrong or missing credentials do not heal by waiting.
    if (err instanceof RegistryRefusedError) fail((err as Error).message);
    log.warn('schema registry not reachable at start; decoding waits for it', { error: err });
  }
}

async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const { config, rules } = loaded;
  const kafkaAuth = kafkaAuthOptions(config.kafka);
  const log = createLogger(config.log.level);
  const metrics = createMetrics();
  setHomePrefix(config.naming.homePrefix);
  const offsetsPool = await checkWarehouse(config.warehouse.url, log);

  // The source's replication slots on /metrics, when a monitoring URL is given: a small pool of
  // its own, so a source that is away only blanks these gauges.
  let sourcePool: Pool | null = null;
  if (config.source.monitorUrl) {
    const pool = new Pool({ connectionString: config.source.monitorUrl, application_name: 'cdc-processor-monitor', max: 1, connectionTimeoutMillis: 3000 });
    pool.on('error', (err) => log.warn('source monitoring connection lost', { error: err }));
    sourcePool = pool;
    let failing = false;
    addSlotMetrics(metrics, async () => {
      const slots = await readSlots(pool);
      failing = false;
      return slots;
    }, (err) => {
      if (!failing) log.warn('cannot read the source replication slots (SOURCE_MONITOR_URL); slot metrics are blank until it answers', { error: err });
      failing = true;
    });
  }

  // Following capture on a connection of its own: a snapshot request holds its transaction
  // while the signal goes to Kafka, and position reads after a rebalance must not wait for that.
  const capturePool = sessionPool(config.warehouse.url, 'cdc-processor-capture', 'capture-following', log);
  const captured = new CapturedTables(capturePool);
  const recorded = await hasCapturedTables(offsetsPool);
  if (config.connect.url && !recorded) fail('warehouse has no table cdc.captured_tables, needed to follow capture (CONNECT_URL): apply warehouse-migrations/ first (make up does)');
  if (!recorded) log.warn('warehouse has no table cdc.captured_tables (migration 0004): warehouse names are not checked for collisions');
  // Schema changes that leave current rows stale (a rename, a clock default): the writer asks
  // Debezium for an incremental snapshot of the table.
  const onResnapshot = async (table: string, reason: string) => { await requestResnapshot(captured, table, reason, log); };
  const schemas = new RegistrySchemas(config.registry.url, { auth: config.registry.auth });
  // A source's transactions load whole only when this processor records its END records.
  let pipelineRef: Pipeline | null = null;
  const readsTransactions = (prefix: string) => pipelineRef?.reads(`${prefix}.transaction`) ?? false;
  const writers = Array.from({ length: config.batch.lanes }, () =>
    new WarehouseWriter(config.warehouse.url, config.kafka.groupId, rules, config.placeholder, log, { onResnapshot, applyMode: config.apply.mode, readsTransactions }));
  const pipeline = new Pipeline(
    {
      brokers: config.kafka.brokers,
      clientId: config.kafka.clientId,
      kafkaAuth,
      groupId: config.kafka.groupId,
      topics: config.kafka.topics,
      topicPattern: config.kafka.topicPattern,
      limits: config.batch,
      maxBackoffMs: config.retry.maxBackoffMs,
    },
    new Decoder(schemas),
    writers,
    (tp) => readOffset(offsetsPool, config.kafka.groupId, tp),
    metrics,
    log,
  );
  pipelineRef = pipeline;
  let server;
  try {
    server = await startHttp(config.http.host, config.http.port, metrics, pipeline);
  } catch (err) {
    fail((err as Error).message);
  }

  // The watermark step on a connection of its own: a catch-up step over thousands of
  // transactions takes seconds, and position reads after a rebalance must not wait for it.
  const stepPool = sessionPool(config.warehouse.url, 'cdc-processor-watermark', 'watermark', log);
  const consistency = await startConsistency(stepPool, metrics, log, { minGapMs: config.apply.stepGapMs, slowMs: config.apply.slowStepMs, stallMs: config.apply.stallMs, inspect: offsetsPool });
  // A committed batch may complete a transaction: the step publishes it without waiting a second.
  // Per batch (event mode) nothing waits for the watermark: the step each second is enough.
  if (config.apply.mode === 'transaction') pipeline.afterBatch = () => consistency?.kick();

  const follower = config.connect.url
    ? new CaptureFollower(
      { connectUrl: config.connect.url, connectAuth: config.connect.auth, connectors: config.connect.connectors, pollMs: config.connect.pollMs, brokers: config.kafka.brokers, clientId: config.kafka.clientId, kafkaAuth },
      captured, (topics, refused) => pipeline.setTopics(topics, refused), log)
    : null;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    await follower?.stop();
    consistency?.stop();
    await pipeline.stop();
    server.close();
    await offsetsPool.end().catch(() => undefined);
    await stepPool.end().catch(() => undefined);
    await capturePool.end().catch(() => undefined);
    await sourcePool?.end().catch(() => undefined);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  log.info('starting', {
    warehouse: redactUrl(config.warehouse.url),
    brokers: config.kafka.brokers,
    // Never the password.
    kafkaSecurity: { ssl: config.kafka.ssl.enabled, caFile: config.kafka.ssl.caFile || undefined, sasl: config.kafka.sasl.mechanism || 'none', user: config.kafka.sasl.username || undefined },
    registry: config.registry.url,
    batch: config.batch,
    apply: config.apply.mode,
    http: `http://${config.http.host}:${config.http.port}`,
    follow: config.connect.url ? { connect: config.connect.url, connectors: config.connect.connectors.length ? config.connect.connectors : 'all' } : 'no (fixed topics)',
  });
  if (follower) {
    try {
      await follower.start();
    } catch (err) {
      // Kafka's errors (kafkajs names them KafkaJS…: unreachable, refused credentials, ACLs) say a
      // host and port at most, not which setting holds them.
      const e = err as Error;
      if (e?.name?.startsWith('KafkaJS')) fail(`Kafka at ${config.kafka.brokers.join(',')} (KAFKA_BOOTSTRAP_SERVERS): ${e.message}`);
      fail(`cannot follow capture: ${e?.message}`);
    }
  } else {
    try {
      const topics = await pipeline.resolveTopics();
      // Transaction metadata claims no warehouse name.
      const tables = topics.filter((t) => !isTransactionTopic(t));
      await pipeline.start(topics, recorded ? await captured.claim(tables.map((topic) => ({ topic, connector: null }))) : new Map());
    } catch (err) {
      fail(`cannot consume from Kafka ${config.kafka.brokers.join(',')} (KAFKA_BOOTSTRAP_SERVERS): ${(err as Error).message}`);
    }
  }
  await reportTablesWithoutKey(schemas, (pipeline.health().topics as string[]) ?? [], log);
}

main().catch((err) => fail(`unexpected error: ${err?.stack ?? err}`, 1));
