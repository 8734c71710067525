// Kafka secured (SECURITY=on: SASL/SCRAM over TLS, ACLs): a client without credentials is refused
// by every broker, a wrong password fails authentication, and each principal can do only its part.
// make test-cluster runs it on its cluster (after the chaos file; it brings the cluster up again
// and stops it). On a running one-node SECURITY=on stack, against that stack and leaving it up:
//   KAFKA_SECURITY_TEST_STACK=current npx jest -c e2e/cluster/jest.config.js kafka-security
// (with that stack's DATA_DIR and ports exported, as for make up); make test does that when its
// stack runs with SECURITY=on.
import { Kafka, logLevel } from 'kafkajs';
import { kafkaAuthOptions, kafkaClient, type KafkaSecurity } from '../../processor/src/kafka-options';
import { clusterEnv, clusterStackEnv, livePids, processesNamingDataDir, run } from './cluster-lib';

const CURRENT = process.env.KAFKA_SECURITY_TEST_STACK === 'current';
const scriptEnv = CURRENT ? process.env : clusterEnv();
let env: Record<string, string>;
let brokers: string[];

const quick = { logLevel: logLevel.NOTHING, connectionTimeout: 3000, authenticationTimeout: 5000, requestTimeout: 8000, retry: { retries: 0 } };

// kafkajs tries every broker for a group's coordinator and reports only "no brokers" in the end:
// the broker's answer (GROUP_AUTHORIZATION_FAILED) is in its debug log, kept here per failure().
let logged: string[] = [];
const keepErrors = () => (entry: { log: Record<string, any> }) => {
  const e = entry.log.error;
  if (e) logged.push(`${e.type ?? e.name ?? ''} ${e.message ?? e}`);
};

/** A client as `user` with `password`, trusting the stack's CA. */
function as(user: string, password: string, only = brokers): Kafka {
  return kafkaClient({ clientId: `security-test-${user}`, brokers: only, ...quick, logLevel: logLevel.DEBUG, logCreator: keepErrors }, {
    KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: env.KAFKA_SSL_CA_FILE, KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: user, KAFKA_SASL_PASSWORD: password,
  });
}

/** Names and messages of an error and what it wraps (kafkajs wraps the broker's answer). */
function explain(err: unknown): string {
  const parts: string[] = [];
  for (let e: any = err, i = 0; e && i < 5; e = e.originalError ?? e.cause, i++) parts.push(`${e.name}: ${e.type ?? ''} ${e.message}`);
  return parts.join(' <- ');
}

async function failure(p: Promise<unknown>): Promise<string> {
  logged = [];
  try {
    await p;
  } catch (err) {
    return `${explain(err)} | broker said: ${[...new Set(logged)].join('; ')}`;
  }
  return 'no error';
}

async function withAdmin<T>(kafka: Kafka, f: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // (kafkajs finds a group's coordinator only among brokers it has metadata of)
    await admin.listTopics();
    return await f(admin);
  } finally {
    await admin.disconnect();
  }
}

beforeAll(async () => {
  if (!CURRENT) expect(await run(['infra/up.sh'])).toBe(0);
  env = clusterStackEnv(scriptEnv);
  if (env.KAFKA_SSL !== 'true' || env.KAFKA_SASL_MECHANISM !== 'scram-sha-512') {
    throw new Error('this stack runs without security (make env has no KAFKA_SSL/KAFKA_SASL_MECHANISM): start it with SECURITY=on');
  }
  brokers = env.KAFKA_BOOTSTRAP_SERVERS.split(',');
});

afterAll(async () => {
  if (!CURRENT && livePids().length) await run(['infra/down.sh']);
});

describe('Kafka with SASL/SCRAM over TLS and ACLs', () => {
  it('the admin of make env works (so what follows fails for the reason tested)', async () => {
    const topics = await withAdmin(kafkaClient({ clientId: 'security-test-admin', brokers, ...quick }, env), (a) => a.listTopics());
    expect(topics).toEqual(expect.arrayContaining(['dbserver1.public.orders', 'dbserver1-signal']));
  });

  it("every broker refuses a client without credentials (plaintext, TLS without SASL) and a client that does not trust the stack's CA", async () => {
    const REFUSED = /Closed connection|Connection error|timed out/i;
    for (const broker of brokers) {
      const plaintext = new Kafka({ clientId: 'security-test-plain', brokers: [broker], ...quick });
      expect(await failure(withAdmin(plaintext, (a) => a.listTopics()))).toMatch(REFUSED);
      const noSasl: KafkaSecurity = { ssl: { enabled: true, caFile: env.KAFKA_SSL_CA_FILE }, sasl: { mechanism: '', username: '', password: '', passwordFile: '' } };
      const tlsOnly = new Kafka({ clientId: 'security-test-tls', brokers: [broker], ...quick, ...kafkaAuthOptions(noSasl) });
      expect(await failure(withAdmin(tlsOnly, (a) => a.listTopics()))).toMatch(REFUSED);
      // The admin's own credentials, but trusting only the system's CAs: the broker's certificate is refused.
      const untrusting = new Kafka({ clientId: 'security-test-ca', brokers: [broker], ...quick, ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'admin', password: env.KAFKA_SASL_PASSWORD } });
      expect(await failure(withAdmin(untrusting, (a) => a.listTopics()))).toMatch(/self-signed certificate|unable to verify/i);
    }
  });

  it('a wrong password fails authentication, on every broker', async () => {
    for (const broker of brokers) {
      for (const user of ['admin', 'processor', 'connect']) {
        expect(await failure(withAdmin(as(user, 'not-the-password', [broker]), (a) => a.listTopics()))).toMatch(/KafkaJSSASLAuthenticationError.*invalid credentials/i);
      }
    }
  });

  it("the processor's principal reads the change topics and writes the signal topic, and cannot write the change topics nor read another topic", async () => {
    const kafka = as('processor', env.KAFKA_PROCESSOR_PASSWORD);
    const offsets = await withAdmin(kafka, (a) => a.fetchTopicOffsets('dbserver1.public.orders'));
    expect(offsets.length).toBeGreaterThan(0);

    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      expect(await failure(producer.send({ topic: 'dbserver1.public.orders', acks: -1, messages: [{ value: 'forged' }] }))).toMatch(/TOPIC_AUTHORIZATION_FAILED/);
      // What it does write: the connector's signal topic (processor/src/signals.ts). Debezium ignores
      // a record whose key is not its topic prefix, so this one asks nothing of it.
      await producer.send({ topic: 'dbserver1-signal', acks: -1, messages: [{ key: 'security-test', value: '{}', partition: 0 }] });
    } finally {
      await producer.disconnect();
    }
    expect(await failure(withAdmin(kafka, (a) => a.fetchTopicOffsets('cdc-connect-offsets')))).toMatch(/TOPIC_AUTHORIZATION_FAILED|not authorized/i);
    // Its consumer group is its own (readable); another group is refused.
    await withAdmin(kafka, (a) => a.fetchOffsets({ groupId: env.PROCESSOR_GROUP_ID || 'cdc-warehouse', topics: ['dbserver1.public.orders'] }));
    expect(await failure(withAdmin(kafka, (a) => a.fetchOffsets({ groupId: 'cdc-connect', topics: ['dbserver1.public.orders'] })))).toMatch(/GROUP_AUTHORIZATION_FAILED/);
  });

  it("Connect's principal reads its own topics, and cannot read the processor's group nor the change topics", async () => {
    const kafka = as('connect', env.KAFKA_CONNECT_PASSWORD);
    const offsets = await withAdmin(kafka, (a) => a.fetchTopicOffsets('cdc-connect-offsets'));
    expect(offsets.length).toBeGreaterThan(0);
    const group = env.PROCESSOR_GROUP_ID || 'cdc-warehouse';
    expect(await failure(withAdmin(kafka, (a) => a.fetchOffsets({ groupId: group, topics: ['dbserver1.public.orders'] })))).toMatch(/GROUP_AUTHORIZATION_FAILED/);

    // (kafka-signal: a group of Connect's that no member joins, Debezium's signal consumer assigns its partition)
    const consumer = kafka.consumer({ groupId: 'kafka-signal' });
    await consumer.connect();
    try {
      // Connect writes the change topics; reading them is the processor's part.
      let timer: NodeJS.Timeout | undefined;
      const crashed = new Promise((_, reject) => {
        consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
        timer = setTimeout(() => reject(new Error('no error within 30 s')), 30_000);
      });
      const read = consumer.subscribe({ topics: ['dbserver1.public.orders'], fromBeginning: true })
        .then(() => consumer.run({ eachMessage: async () => undefined }))
        .then(() => crashed);
      expect(await failure(read)).toMatch(/TOPIC_AUTHORIZATION_FAILED|not authorized/i);
      clearTimeout(timer);
    } finally {
      await consumer.disconnect();
    }
  });

  // The cluster is this file's to stop; a stack it was pointed at (CURRENT) is not.
  if (!CURRENT) {
    it('make down stops the secured cluster and leaves no process behind', async () => {
      expect(await run(['infra/down.sh'])).toBe(0);
      expect(livePids()).toEqual([]);
      expect(processesNamingDataDir()).toEqual([]);
    });
  }
});
