// Which Kafka topics are change topics of a Debezium PostgreSQL connector, and the warehouse
// name of each. Pure functions: the Connect and Kafka look-ups are in capture.ts.
//
// Debezium names a table's topic `<topic.prefix>.<schema>.<table>`. Next to those it writes
// `__debezium-heartbeat.<prefix>` (heartbeats), `<prefix>.transaction` (transaction metadata),
// `<prefix>` alone (schema changes) and reads `<prefix>-signal` (signals); Connect keeps its
// own `connect-*` topics. None of those carries rows.

/** The prefix whose tables keep their plain names (`orders`, not `dbserver1_public_orders`). */
export const DEFAULT_HOME_PREFIX = 'dbserver1';

let homePrefix = DEFAULT_HOME_PREFIX;

/** Set once at start from configuration (WAREHOUSE_HOME_PREFIX). Module state because the
 *  decoder names tables by topic alone, and the rule must be the same everywhere in a process. */
export function setHomePrefix(prefix: string): void {
  homePrefix = prefix;
}

export interface TopicParts {
  prefix: string;
  schema: string;
  table: string;
}

// The writer asks for every event (3% of a drain's CPU when split each time); topics are few.
const splitTopics = new Map<string, Readonly<TopicParts> | null>();

/** `<prefix>.<schema>.<table>`; a prefix may itself contain dots. Null for other shapes. */
export function splitTopic(topic: string): Readonly<TopicParts> | null {
  let split = splitTopics.get(topic);
  if (split === undefined) {
    const parts = topic.split('.');
    split = parts.length < 3 || parts.some((p) => p === '') ? null : Object.freeze({ prefix: parts.slice(0, -2).join('.'), schema: parts[parts.length - 2], table: parts[parts.length - 1] });
    if (splitTopics.size < 10_000) splitTopics.set(topic, split);
  }
  return split;
}

/**
 * The warehouse base name of a change topic (`<name>_fact`, `<name>_latest`):
 * - home prefix, schema public → `<table>`            dbserver1.public.orders    → orders
 * - home prefix, other schema  → `<schema>_<table>`   dbserver1.inventory.orders → inventory_orders
 * - another prefix             → `<prefix>_<schema>_<table>`, dots and dashes of the prefix as `_`
 *                                                     shop2.public.orders        → shop2_public_orders
 * Names that still coincide (`public.inventory_orders` next to `inventory.orders`) are caught
 * by cdc.captured_tables (one topic per name) and the later topic's events are rejected.
 */
export function warehouseTableName(topic: string, home: string = homePrefix): string {
  const parts = splitTopic(topic);
  if (!parts) return topic.split('.').pop() as string;
  const { prefix, schema, table } = parts;
  if (prefix === home) return schema === 'public' ? table : `${schema}_${table}`;
  return `${prefix.replace(/[.-]/g, '_')}_${schema}_${table}`;
}

/** The name under the process's home prefix (what the decoder uses). */
export function tableNameForTopic(topic: string): string {
  return warehouseTableName(topic);
}

/** Splits a Debezium list option: commas separate entries unless escaped with a backslash. */
export function splitList(value: string | undefined | null): string[] {
  if (!value) return [];
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && value[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter(Boolean);
}

/** What the processor needs to know of one Debezium PostgreSQL source connector. */
export interface CaptureSource {
  connector: string;
  prefix: string;
  tableInclude: string[];
  tableExclude: string[];
  schemaInclude: string[];
  schemaExclude: string[];
  /** `signal.kafka.topic` (Debezium's default: `<prefix>-signal`). */
  signalTopic: string;
  /** Whether `signal.enabled.channels` includes `kafka`. */
  kafkaSignals: boolean;
  /** `signal.data.collection` (schema.table), whose changes are Debezium's bookkeeping. */
  signalCollection: string | null;
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

/**
 * Debezium's topic name part for a schema or table name: Kafka allows only ASCII letters, digits,
 * `.`, `_` and `-` in topic names, and Debezium puts `_` for every other character (its log:
 * "… isn't a valid topic name, replacing it with …"): table `Weird Things` → topic `….Weird_Things`.
 */
export function topicSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

// Topics whose table's real name Debezium changed to name the topic, with that name as the
// include list gives it (CapturedTables.sync notes them). Debezium's END records count a
// transaction's events under the real name, so the writer must count its progress under it too.
const realCollections = new Map<string, string>();

export function noteRealCollection(topic: string, collection: string): void {
  realCollections.set(topic, collection);
}

/** `schema.table` as Debezium names the topic's table in END records: the real name where it
 *  differs from the topic's (noted above), else the topic's. Null for other topic shapes. */
export function collectionOf(topic: string): string | null {
  const real = realCollections.get(topic);
  if (real !== undefined) return real;
  const parts = splitTopic(topic);
  return parts ? `${parts.schema}.${parts.table}` : null;
}

/** An include/exclude pattern as it reads against topic names: what topicSafe would replace,
 *  replaced, but not the pattern's own syntax (`\`, `*`, `[`, …). */
function topicSafePattern(pattern: string): string {
  return pattern.replace(/[^A-Za-z0-9._\-\\*+?()[\]{}|^$:=!<>,]/g, '_');
}

/** Whether a pattern of a Debezium list matches `name`. Debezium compiles each entry
 *  case-insensitively and requires the whole name to match. `topicSafeToo`: `name` may be read
 *  from a topic, which Debezium made topic-safe, so the pattern is tried topic-safe too (include
 *  lists only: an exclude entry `public.audit log` must not exclude a real `public.audit_log`). */
function matchesAny(patterns: string[], name: string, topicSafeToo = false): boolean {
  const test = (p: string) => {
    try {
      return new RegExp(`^(?:${p})$`, 'i').test(name);
    } catch {
      return false;
    }
  };
  return patterns.some((p) => {
    if (test(p)) return true;
    if (!topicSafeToo) return false;
    const safe = topicSafePattern(p);
    return safe !== p && test(safe);
  });
}

/** Whether the connector captures `schema.table`, by Debezium's filter rules. */
export function captures(src: CaptureSource, schema: string, table: string): boolean {
  if (SYSTEM_SCHEMAS.has(schema)) return false;
  const name = `${schema}.${table}`;
  if (src.signalCollection && src.signalCollection.toLowerCase() === name.toLowerCase()) return false;
  if (src.schemaInclude.length && !matchesAny(src.schemaInclude, schema, true)) return false;
  if (src.schemaExclude.length && matchesAny(src.schemaExclude, schema)) return false;
  if (src.tableInclude.length) return matchesAny(src.tableInclude, name, true);
  return !matchesAny(src.tableExclude, name);
}

/** Builds a CaptureSource from a connector's configuration; null unless Debezium PostgreSQL. */
export function captureSource(connector: string, config: Record<string, string>): CaptureSource | null {
  if (!/PostgresConnector$/.test(config['connector.class'] ?? '')) return null;
  const prefix = config['topic.prefix'];
  if (!prefix) return null;
  return {
    connector,
    prefix,
    tableInclude: splitList(config['table.include.list']),
    tableExclude: splitList(config['table.exclude.list']),
    schemaInclude: splitList(config['schema.include.list']),
    schemaExclude: splitList(config['schema.exclude.list']),
    signalTopic: config['signal.kafka.topic'] || `${prefix}-signal`,
    kafkaSignals: splitList(config['signal.enabled.channels']).includes('kafka'),
    signalCollection: config['signal.data.collection'] || null,
  };
}

/** The source that wrote a topic as a change topic, if any (longest prefix first: `a.b` before `a`). */
export function sourceOfTopic(sources: CaptureSource[], topic: string): { src: CaptureSource; schema: string; table: string } | null {
  const byLength = [...sources].sort((a, b) => b.prefix.length - a.prefix.length);
  for (const src of byLength) {
    if (!topic.startsWith(`${src.prefix}.`)) continue;
    const rest = topic.slice(src.prefix.length + 1).split('.');
    if (rest.length !== 2 || !rest[0] || !rest[1]) continue;
    return { src, schema: rest[0], table: rest[1] };
  }
  return null;
}

/** Connect's, Kafka's and Debezium's own topics: never change topics whatever the patterns say. */
export function isInternalTopic(sources: CaptureSource[], topic: string): boolean {
  if (topic.startsWith('__') || /^_?connect[-_.]/.test(topic)) return true;
  return sources.some((s) => topic === `${s.prefix}.transaction` || topic === s.signalTopic);
}

/** The change topics among the existing ones: captured tables of the given connectors, sorted. */
export function changeTopics(sources: CaptureSource[], existing: Iterable<string>): string[] {
  const out: string[] = [];
  for (const topic of existing) {
    if (isInternalTopic(sources, topic)) continue;
    const hit = sourceOfTopic(sources, topic);
    if (hit && captures(hit.src, hit.schema, hit.table)) out.push(topic);
  }
  return out.sort();
}

/** Without Connect's configurations (fixed topics): `<prefix>.transaction` with a prefix without
 *  dots is taken for transaction metadata (`<prefix>.<schema>.transaction` is a table's). */
export function isTransactionTopic(topic: string): boolean {
  return /^[^.]+\.transaction$/.test(topic);
}

/** The transaction-metadata topics (`<prefix>.transaction`) of the given connectors that exist:
 *  loaded next to the change topics as metadata (END records), never as a table. */
export function transactionTopics(sources: CaptureSource[], existing: Iterable<string>): string[] {
  const have = new Set(existing);
  return [...new Set(sources.map((s) => `${s.prefix}.transaction`))].filter((t) => have.has(t)).sort();
}

/**
 * The include-list entries that name one table (`public.orders`, `public\.orders`), as
 * `{schema, table}`. Only those can be known before the table's first event, so only those
 * are snapshot when added; an entry with a pattern loads its tables from their first change.
 */
export function namedTables(src: CaptureSource): Array<{ schema: string; table: string }> {
  const out: Array<{ schema: string; table: string }> = [];
  for (const entry of src.tableInclude) {
    // Any name without the syntax of a pattern: `public.Weird Things` names one table too. Not
    // quotes (Debezium takes `"x"` literally) nor spaces at either end of a part (no such table).
    const m = /^([^.\\*+?()[\]{}|^"\s](?:[^.\\*+?()[\]{}|^"]*[^.\\*+?()[\]{}|^"\s])?)\\?\.([^.\\*+?()[\]{}|^"\s](?:[^.\\*+?()[\]{}|^"]*[^.\\*+?()[\]{}|^"\s])?)$/.exec(entry);
    if (m && captures(src, m[1], m[2])) out.push({ schema: m[1], table: m[2] });
  }
  return out;
}

/** Two topic sets are the same subscription. */
export function sameTopics(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((t) => s.has(t));
}
