import { tableNameForTopic } from '../src/columns';
import { parseConnectors } from '../src/capture';
import { dataCollection, snapshotSignal } from '../src/signals';
import { captureSource, captures, changeTopics, collectionOf, namedTables, splitList, splitTopic, topicSafe, warehouseTableName, type CaptureSource } from '../src/topics';

const pg = 'io.debezium.connector.postgresql.PostgresConnector';
const source = (over: Record<string, string> = {}): CaptureSource =>
  captureSource('orders-source', { 'connector.class': pg, 'topic.prefix': 'dbserver1', 'table.include.list': 'public.orders', ...over })!;

describe('warehouse table names', () => {
  it('keeps the existing names for the home prefix', () => {
    expect(tableNameForTopic('dbserver1.public.orders')).toBe('orders');
    expect(tableNameForTopic('dbserver1.inventory.orders')).toBe('inventory_orders');
  });

  it('gives the tables of another connector (prefix) names of their own', () => {
    expect(tableNameForTopic('shop2.public.orders')).toBe('shop2_public_orders');
    expect(tableNameForTopic('shop2.inventory.orders')).toBe('shop2_inventory_orders');
    expect(warehouseTableName('eu.shop-2.public.orders', 'dbserver1')).toBe('eu_shop_2_public_orders');
    expect(warehouseTableName('shop2.public.orders', 'shop2')).toBe('orders');
  });
});

describe('topic parts', () => {
  it('splits prefix, schema and table, the same each time it is asked', () => {
    expect(splitTopic('shop.eu.public.orders')).toEqual({ prefix: 'shop.eu', schema: 'public', table: 'orders' });
    expect(splitTopic('shop.eu.public.orders')).toEqual({ prefix: 'shop.eu', schema: 'public', table: 'orders' });
    expect(splitTopic('dbserver1.transaction')).toBeNull();
    expect(splitTopic('dbserver1.transaction')).toBeNull();
    expect(splitTopic('a..b')).toBeNull();
    // Shared between callers: frozen, so no caller can change what the next one gets.
    expect(Object.isFrozen(splitTopic('shop.eu.public.orders'))).toBe(true);
  });
});

describe('change topics of Debezium connectors', () => {
  const existing = [
    'dbserver1.public.orders', 'dbserver1.public.items', 'dbserver1.inventory.orders',
    '__debezium-heartbeat.dbserver1', 'dbserver1.transaction', 'dbserver1', 'dbserver1-signal',
    'connect-offsets', 'connect-configs', 'connect-status', '__consumer_offsets',
    'dbserver1.public.debezium_signal', 'other.public.orders',
  ];

  it('are the existing topics of captured tables, nothing of Debezium\'s or Connect\'s own', () => {
    expect(changeTopics([source()], existing)).toEqual(['dbserver1.public.orders']);
    const wide = source({ 'table.include.list': 'public.orders,public\\.it.*,inventory\\..*', 'signal.data.collection': 'public.debezium_signal' });
    expect(changeTopics([wide], [...existing, 'dbserver1.public.other'])).toEqual(['dbserver1.inventory.orders', 'dbserver1.public.items']
      .concat(['dbserver1.public.orders']).sort());
  });

  it('match the include list as Debezium does: whole name, any case', () => {
    const s = source({ 'table.include.list': 'public.ORD.*' });
    expect(captures(s, 'public', 'orders')).toBe(true);
    expect(captures(s, 'xpublic', 'orders')).toBe(false);
    expect(captures(source({ 'table.include.list': 'public.order' }), 'public', 'orders')).toBe(false);
  });

  it('follow exclude lists and schema lists when there is no table include list', () => {
    const s = source({ 'table.include.list': '', 'table.exclude.list': 'public.secret', 'schema.exclude.list': 'audit' });
    expect(captures(s, 'public', 'orders')).toBe(true);
    expect(captures(s, 'public', 'secret')).toBe(false);
    expect(captures(s, 'audit', 'log')).toBe(false);
    expect(captures(s, 'pg_catalog', 'pg_class')).toBe(false);
  });

  it('with several connectors, each topic belongs to its own prefix', () => {
    const a = source();
    const b = captureSource('shop2-source', { 'connector.class': pg, 'topic.prefix': 'dbserver1.shop2', 'table.include.list': 'public.orders' })!;
    expect(changeTopics([a, b], ['dbserver1.public.orders', 'dbserver1.shop2.public.orders', 'dbserver1.shop2.orders'])).toEqual([
      'dbserver1.public.orders', 'dbserver1.shop2.public.orders',
    ]);
  });

  it('names the tables an include list lists one by one (those get a snapshot when added)', () => {
    expect(namedTables(source({ 'table.include.list': 'public.orders, inventory\\.orders,public.e2e_.*' }))).toEqual([
      { schema: 'public', table: 'orders' }, { schema: 'inventory', table: 'orders' },
    ]);
  });

  // Debezium writes table `Weird Things` to topic dbserver1.public.Weird_Things (Kafka refuses the
  // space): the include list's real name must still find that topic, and name the table.
  it('find the topic of a table whose name Kafka does not take as it is', () => {
    expect(topicSafe('Weird Things')).toBe('Weird_Things');
    expect(topicSafe('façade-2.x')).toBe('fa_ade-2.x');
    const s = source({ 'table.include.list': 'public.orders,public.Weird Things,sales.Ümsatz.*' });
    expect(changeTopics([s], ['dbserver1.public.orders', 'dbserver1.public.Weird_Things', 'dbserver1.sales._msatz_2026', 'dbserver1.public.Weird_Other']))
      .toEqual(['dbserver1.public.Weird_Things', 'dbserver1.public.orders', 'dbserver1.sales._msatz_2026']);
    expect(captures(s, 'public', 'Weird Things')).toBe(true);
    expect(namedTables(s)).toEqual([{ schema: 'public', table: 'orders' }, { schema: 'public', table: 'Weird Things' }]);
    // Only include lists read topic-safe: Debezium matches exclude entries against real names, so
    // `public.audit log` does not exclude a real table public.audit_log.
    const ex = source({ 'table.include.list': '', 'table.exclude.list': 'public.audit log' });
    expect(changeTopics([ex], ['dbserver1.public.orders', 'dbserver1.public.audit_log'])).toEqual(['dbserver1.public.audit_log', 'dbserver1.public.orders']);
    // Pattern syntax survives the topic-safe reading.
    const group = source({ 'table.include.list': 'public.(?:Weird Things|x),public.(?!skip)[a-z]+ y' });
    expect(changeTopics([group], ['dbserver1.public.Weird_Things', 'dbserver1.public.kept_y', 'dbserver1.public.skip_y', 'dbserver1.public.x']))
      .toEqual(['dbserver1.public.Weird_Things', 'dbserver1.public.kept_y', 'dbserver1.public.x']);
  });

  it('names one table only for an entry that can be one', () => {
    const named = (list: string) => namedTables(source({ 'table.include.list': list }));
    expect(named('public.a,public.Weird Things,inventory\\.b')).toEqual([
      { schema: 'public', table: 'a' }, { schema: 'public', table: 'Weird Things' }, { schema: 'inventory', table: 'b' },
    ]);
    // Quotes are taken literally by Debezium, and a part cannot start or end with a space.
    expect(named('public."Weird Things",public. orders,public.orders_.*')).toEqual([]);
  });

  it('counts a transaction under the name Debezium gives its table', () => {
    expect(collectionOf('dbserver1.public.orders')).toBe('public.orders');
    expect(collectionOf('dbserver1.transaction')).toBeNull();
  });

  it('splits Debezium lists on unescaped commas', () => {
    expect(splitList('a.b, c\\,d ,,e')).toEqual(['a.b', 'c,d', 'e']);
    expect(splitList(undefined)).toEqual([]);
  });
});

describe('connectors from Kafka Connect', () => {
  it('keeps Debezium PostgreSQL sources with their signal settings, optionally only the named ones', () => {
    const body = {
      'orders-source': {
        info: { type: 'source', config: { 'connector.class': pg, 'topic.prefix': 'dbserver1', 'table.include.list': 'public.orders', 'signal.enabled.channels': 'source,kafka', 'signal.data.collection': 'public.debezium_signal' } },
        status: { connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'RUNNING' }] },
      },
      'jdbc-sink': { info: { type: 'sink', config: { 'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector' } }, status: {} },
      'shop2': {
        info: { type: 'source', config: { 'connector.class': pg, 'topic.prefix': 'shop2', 'signal.kafka.topic': 'shop2-signals' } },
        status: { connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'FAILED' }] },
      },
    };
    const all = parseConnectors(body);
    expect(all.map((c) => [c.source.connector, c.source.signalTopic, c.source.kafkaSignals, c.running])).toEqual([
      ['orders-source', 'dbserver1-signal', true, true],
      ['shop2', 'shop2-signals', false, false],
    ]);
    expect(parseConnectors(body, ['shop2']).map((c) => c.source.connector)).toEqual(['shop2']);
  });

  it('leaves out a connector that opts out with cdc.warehouse.follow=false, unless it is named', () => {
    const body = {
      'orders-source': { info: { type: 'source', config: { 'connector.class': pg, 'topic.prefix': 'dbserver1' } }, status: {} },
      'e2e-probe': { info: { type: 'source', config: { 'connector.class': pg, 'topic.prefix': 'probe', 'cdc.warehouse.follow': 'FALSE' } }, status: {} },
    };
    expect(parseConnectors(body).map((c) => c.source.connector)).toEqual(['orders-source']);
    expect(parseConnectors(body, ['e2e-probe']).map((c) => c.source.connector)).toEqual(['e2e-probe']);
  });
});

describe('the incremental snapshot signal', () => {
  it('is keyed by the topic prefix and names the tables, as KafkaSignalChannel reads it', () => {
    const m = snapshotSignal('dbserver1', ['public.items'], 'id-1');
    expect(m.key).toBe('dbserver1');
    expect(JSON.parse(m.value)).toEqual({ id: 'id-1', type: 'execute-snapshot', data: { 'data-collections': ['public.items'], type: 'incremental' } });
  });

  it('quotes a name Debezium would not parse as a table identifier', () => {
    expect(dataCollection('public', 'items')).toBe('public.items');
    expect(dataCollection('public', 'Weird Things')).toBe('public."Weird Things"');
    expect(dataCollection('Sales 2026', 'say "hi"')).toBe('"Sales 2026"."say ""hi"""');
  });
});
