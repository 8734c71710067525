// `make verify`: wait until the pipeline has caught up, then prove that the warehouse holds
// exactly the source's rows and every change event once. Exit 0 only on a full match.
import { ConfigError, EXIT, ProgressLine, intFlag, parseFlags, runMain } from './lib/cli';
import { optionalEnv, parseBrokers, requireEnv } from './lib/env';
import { Db, connectDb, requireTable, tableExists } from './lib/db';
import { LagProbe } from './lib/kafkalag';
import { normaliseSession } from './lib/reconcile';
import { SOURCE_TABLE, formatReport, runVerify } from './lib/verify';

export { runVerify, formatReport } from './lib/verify';

const DEFAULT_TOPIC = 'dbserver1.public.orders';

const HELP = `Usage: make verify [ARGS="--timeout S"]
       node dist/seed/verify.js [--timeout S] [--max-diffs N] [--topic T] [--group G] [--allow-rejected]

Waits until the processor has consumed the topic up to its high watermarks (cdc.offsets in the
warehouse) and public.orders agrees with public.orders_latest, then reconciles: row counts and
a hash of all 7 columns of every row, orders_fact holding every change event exactly once,
and every key's history starting with a create/read and never continuing after a delete
(except with a new create). Prints the first differing keys.

Exit status: 0 full match; 1 mismatch or not caught up in time; 2 bad configuration or an
unreachable service (one line names it).

  --timeout S     seconds to wait for the pipeline to catch up (default 120; 0 = check once)
  --max-diffs N   differing keys to list per check (default 10)
  --topic T       the orders topic (default ${DEFAULT_TOPIC})
  --group G       the processor's consumer group in cdc.offsets (default $PROCESSOR_GROUP_ID or cdc-warehouse)
  --allow-rejected  leave orders whose events the processor rejected (cdc.rejected_events) out of
                  the row comparison; they are still listed. Their history checks are always
                  skipped: a rejected event is a recorded gap.
  -h, --help      this text

Environment: SOURCE_DATABASE_URL, WAREHOUSE_DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS (optional:
without it the lag check is skipped), PROCESSOR_URL (optional: asked for /health on a timeout).`;

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    timeout: { type: 'string' },
    'max-diffs': { type: 'string' },
    topic: { type: 'string' },
    group: { type: 'string' },
    'allow-rejected': { type: 'boolean' },
  });
  if (flags.help) {
    console.log(HELP);
    return EXIT.ok;
  }
  const timeoutSec = intFlag('timeout', flags.timeout, 120, 0, 86_400);
  const maxDiffs = intFlag('max-diffs', flags['max-diffs'], 10, 1, 10_000);
  const topic = typeof flags.topic === 'string' ? flags.topic : DEFAULT_TOPIC;
  const group = typeof flags.group === 'string' ? flags.group : optionalEnv(process.env, 'PROCESSOR_GROUP_ID') ?? 'cdc-warehouse';
  const sourceUrl = requireEnv(process.env, 'SOURCE_DATABASE_URL');
  const warehouseUrl = requireEnv(process.env, 'WAREHOUSE_DATABASE_URL');
  const kafka = optionalEnv(process.env, 'KAFKA_BOOTSTRAP_SERVERS');
  const brokers = kafka ? parseBrokers(kafka) : null;

  const opened: Db[] = [];
  let probe: LagProbe | null = null;
  try {
    const source = await connectDb(sourceUrl, 'source', 'cdc-verify');
    opened.push(source);
    const warehouse = await connectDb(warehouseUrl, 'warehouse', 'cdc-verify');
    opened.push(warehouse);
    await Promise.all([normaliseSession(source.client), normaliseSession(warehouse.client)]);
    await requireTable(source, SOURCE_TABLE, 'it is created with the stack (`make up`)');
    if (brokers) {
      if (!(await tableExists(warehouse.client, 'cdc.offsets'))) {
        throw new ConfigError(`table cdc.offsets does not exist in the ${warehouse.label}; the warehouse migrations have not run`);
      }
      probe = await LagProbe.connect(brokers, topic, group);
    } else {
      process.stderr.write('verify: KAFKA_BOOTSTRAP_SERVERS is not set: skipping the Kafka lag check, waiting only for source and warehouse to agree\n');
    }

    const line = new ProgressLine(process.stderr, 5);
    const report = await runVerify({
      source: source.client,
      warehouse: warehouse.client,
      lag: probe,
      timeoutSec,
      maxDiffs,
      processorUrl: optionalEnv(process.env, 'PROCESSOR_URL'),
      allowRejected: flags['allow-rejected'] === true,
      onProgress: (text) => line.update(text),
    });
    line.done();
    const { ok, lines } = formatReport(report, { kafkaChecked: probe !== null, topic });
    for (const l of lines) console.log(l);
    return ok ? EXIT.ok : EXIT.failed;
  } finally {
    await probe?.close();
    await Promise.all(opened.map((d) => d.client.end().catch(() => undefined)));
  }
}

if (require.main === module) runMain('verify', main);
