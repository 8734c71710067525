// Time travel for analysts, derived from `<table>_fact` (the append-only change history):
//
//   <table>_history          a view: one row per version of a source row (slowly-changing
//                            dimension type 2): the row's columns plus valid_from, valid_to,
//                            is_current, op, source_lsn, source_txid, processed_at.
//   <table>_as_of(ts)        a set-returning SQL function: the rows live in the source at `ts`,
//                            shaped exactly like `<table>_latest` (RETURNS SETOF <table>_latest).
//   <table>_fact_ts_idx      an index on the fact table (source_ts) INCLUDE (key): finds the keys
//                            changed after an instant without reading the whole history.
//
// Semantics (per key, versions in source order = LSN order, which per key is commit order):
//   valid_from = commit time (source_ts) of the change that created the version;
//   valid_to   = commit time of the key's next change (a delete included); null while current;
//   a delete closes the last version and adds none; an insert after it starts a new chain;
//   several changes of one key in one transaction share a commit time, so all but the last are
//   zero-length versions (valid_from = valid_to), which no instant ever selects.
//   as_of(ts) = the versions with valid_from <= ts < valid_to (or valid_to null): every
//   transaction committed at or before ts, nothing after it.
//
// as_of does not compute the whole history: a key whose newest change committed at or before ts
// is live at ts with exactly its `_latest` row (a key deleted since is not in `_latest`, and its
// delete is a change after ts). Only keys changed after ts need the history: each one's last
// change at or before ts (by LSN), unless that was a delete. For a recent ts that is a few keys
// found through the source_ts index; for an old one a hash join over the history before ts.
//
// Pure SQL text builders; planDdl (ddl.ts) decides when to run them, writer.ts runs them.
import { createHash } from 'crypto';
import { derivedName } from './names';
import { truncatesOf } from './truncate';
import { ident, idents, literal } from './sql';

export const historyView = (table: string): string => derivedName(table, '_history');
export const asOfFunction = (table: string): string => derivedName(table, '_as_of');
export const asOfIndex = (table: string): string => derivedName(table, '_fact_ts_idx');
const factOf = (table: string): string => derivedName(table, '_fact');
const latestOf = (table: string): string => derivedName(table, '_latest');

/** Columns the history view adds after the row's first columns (later source columns follow). */
export const HISTORY_META: readonly string[] = ['valid_from', 'valid_to', 'is_current', 'op', 'source_lsn', 'source_txid', 'processed_at'];
/** Names the view computes itself: a source column with one of these names would be ambiguous. */
export const HISTORY_RESERVED: readonly string[] = ['valid_from', 'valid_to', 'is_current', '__next_truncate_lsn'];
/** The view's inner column: the LSN of the first truncate after a version. */
const NEXT_TRUNCATE = '__next_truncate_lsn';

/** Pipeline columns of `<table>_fact` and `<table>_latest` (kept in sync with ddl.ts). */
const FACT_PIPELINE = new Set(['op', 'source_ts', 'source_lsn', 'source_txid', 'kafka_topic', 'kafka_partition', 'kafka_offset', 'processed_at']);
const LATEST_PIPELINE = new Set(['source_ts', 'source_lsn', 'processed_at']);

/** Bumped when the shape of the generated SQL changes, so installed objects get replaced. */
const LAYOUT_VERSION = 4;
const FINGERPRINT_TAG = 'cdc-time-travel';

/** What the warehouse has installed for one table (read by writer.ts, see timeTravelCatalogSql). */
export interface TimeTravelState {
  /** Fingerprint in the comment of `<table>_history`; null: no view, or not one of ours. */
  historyView: string | null;
  /** Fingerprint in the comment of `<table>_as_of(timestamptz)`; null: none. */
  asOfFunction: string | null;
  /** `<table>_fact_ts_idx` exists and is valid. */
  asOfIndex: boolean;
  /** Size of `<table>_fact` on disk in bytes (0: no table). */
  factBytes: number;
  /** `<table>_truncates` exists (see truncate.ts). */
  truncatesTable: boolean;
}

export const NOTHING_INSTALLED: TimeTravelState = { historyView: null, asOfFunction: null, asOfIndex: false, factBytes: 0, truncatesTable: false };

/** An index on an existing fact table is built inside a batch only up to this size (about
 *  400,000 changes; ~0.2 s on the 2-core reference machine, the batch waits that long once);
 *  beyond it the batch would stall for longer, so the plan says how to build it instead. */
export const INDEX_IN_BATCH_MAX_BYTES = 64 * 1024 * 1024;

export interface TimeTravelInput {
  table: string;
  keyColumns: string[];
  /** Columns of `<table>_fact` after the planned DDL, in table order: name → type. */
  fact: Map<string, string>;
  /** Columns of `<table>_latest` after the planned DDL, in table order: name → type. */
  latest: Map<string, string>;
}

export interface TimeTravelSql {
  /** Creates or replaces the view (see guarded() for what fails the batch). */
  view: string | null;
  /** Creates or replaces the function. */
  function: string;
  viewFingerprint: string | null;
  functionFingerprint: string;
  /** Why the view cannot be made (a source column with a reserved name). */
  notices: string[];
}

/** Columns of the history view, in view order: the fact's data columns in fact order, with the
 *  history columns where the fact's pipeline columns start. Source columns added later come
 *  after them in both, so CREATE OR REPLACE VIEW can always add them at the end. */
export function historyColumns(factColumns: string[]): string[] {
  const out: string[] = [];
  let metaDone = false;
  for (const c of factColumns) {
    if (FACT_PIPELINE.has(c)) {
      if (!metaDone) out.push(...HISTORY_META);
      metaDone = true;
    } else {
      out.push(c);
    }
  }
  if (!metaDone) out.push(...HISTORY_META);
  return out;
}

/** SELECT of the history view (without CREATE). */
export function historySelectSql(table: string, factColumns: string[], keys: string[]): string {
  const f = `public.${ident(factOf(table))}`;
  const data = factColumns.filter((c) => !FACT_PIPELINE.has(c));
  const t = `public.${ident(truncatesOf(table))}`;
  const window = `PARTITION BY ${keys.map((k) => `f.${ident(k)}`).join(', ')} ORDER BY f.source_lsn`;
  // A version ends at the key's next change or at the first truncate after it, whichever came
  // first (by LSN); a version a truncate ended is not current. The truncate is looked up only
  // when the table has one (the CASE tests an uncorrelated EXISTS once per query), so a table
  // never truncated pays nothing per row.
  const next = ident(NEXT_TRUNCATE);
  // Only what the consistency watermark has passed, for a table loaded in whole transactions
  // (migration 0006; otherwise 'infinity'): a transaction still arriving shows no version yet.
  // Snapshot reads ('r') belong to no transaction and show at once, as in `_latest`. A scalar
  // subquery, so it is read once per query, not once per row.
  const visible = `(SELECT public.cdc_visible_through(${literal(table)}))`;
  const base = [
    ...data.map((c) => `f.${ident(c)}`),
    'f.source_ts', 'f.source_lsn', 'f.op', 'f.source_txid', 'f.processed_at',
    `CASE WHEN EXISTS (SELECT FROM ${t}) THEN (SELECT t.source_lsn FROM ${t} AS t WHERE t.source_lsn > f.source_lsn AND t.source_ts <= ${visible} ORDER BY t.source_lsn LIMIT 1) END AS ${next}`,
  ];
  const inner = [
    ...data.map((c) => `f.${ident(c)}`),
    'f.source_ts AS valid_from',
    `CASE WHEN f.${next} < coalesce(lead(f.source_lsn) OVER w, f.${next} + 1) THEN (SELECT t.source_ts FROM ${t} AS t WHERE t.source_lsn = f.${next}) ELSE lead(f.source_ts) OVER w END AS valid_to`,
    `lead(f.source_lsn) OVER w IS NULL AND f.${next} IS NULL AS is_current`,
    'f.op', 'f.source_lsn', 'f.source_txid', 'f.processed_at',
  ];
  const outer = historyColumns(factColumns).map((c) => `v.${ident(c)}`);
  return (
    `SELECT ${outer.join(', ')} FROM (SELECT ${inner.join(', ')} FROM (SELECT ${base.join(', ')} FROM ${f} AS f WHERE (f.source_ts <= ${visible} OR f.op = 'r')) AS f ` +
    `WINDOW w AS (${window})) AS v ` +
    `WHERE v.op <> 'd'`
  );
}

/** Body of the as_of function (a single SELECT, so PostgreSQL inlines it into the caller's
 *  query and plans it for the actual instant). `$1` is the instant. */
export function asOfSelectSql(table: string, latestColumns: Map<string, string>, factColumns: Map<string, string>, keys: string[]): string {
  const f = `public.${ident(factOf(table))}`;
  const l = `public.${ident(latestOf(table))}`;
  const cols = [...latestColumns.keys()];
  const fromLatest = cols.map((c) => `l.${ident(c)}`);
  // The same columns from the history: a column _latest has but the history lacks (never made
  // by the pipeline, which adds columns to both) would read as null.
  const fromFact = cols.map((c) => (factColumns.has(c) || LATEST_PIPELINE.has(c) ? `x.${ident(c)}` : `NULL::${latestColumns.get(c)}`));
  const t = `public.${ident(truncatesOf(table))}`;
  const keyList = (alias: string) => keys.map((k) => `${alias}.${ident(k)}`).join(', ');
  const tuple = (alias: string) => (keys.length === 1 ? keyList(alias) : `(${keyList(alias)})`);
  const match = (a: string, b: string) => keys.map((k) => `${a}.${ident(k)} = ${b}.${ident(k)}`).join(' AND ');
  // Never both halves for one key, even if its commit times went backwards (a snapshot row
  // read after a change that committed while the initial snapshot ran).
  const notInLatest = `NOT EXISTS (SELECT FROM ${l} AS n WHERE ${match('n', 'h')} AND n.source_ts <= $1)`;
  // The version was live at the instant unless a truncate at or before it came after it.
  const notTruncated = `NOT EXISTS (SELECT FROM ${t} AS t WHERE t.source_ts <= $1 AND t.source_lsn > x.source_lsn)`;
  // Past the consistency watermark of the table's source (migration 0005) the warehouse may hold
  // part of a transaction: the guard raises rather than return a half state. It depends on the
  // instant only, so PostgreSQL runs it once per query (a one-time filter), and the function
  // stays a single inlinable SELECT.
  const allowed = `public.cdc_as_of_allowed(${literal(table)}, $1)`;
  const lastBefore = (where: string, gate = '') =>
    `SELECT ${fromFact.join(', ')} FROM (SELECT DISTINCT ON (${keyList('h')}) h.* FROM ${f} AS h ` +
    `WHERE h.source_ts <= $1 AND ${where} AND ${notInLatest} AND ${allowed} ` +
    `ORDER BY ${keyList('h')}, h.source_lsn DESC) AS x WHERE x.op <> 'd' AND ${notTruncated}${gate}`;
  return (
    // Keys whose newest change committed at or before the instant: live then, as now (a
    // truncate removes the older rows from _latest, so what is left there came after it).
    `SELECT ${fromLatest.join(', ')} FROM ${l} AS l WHERE ${allowed} AND l.source_ts <= $1 ` +
    'UNION ALL ' +
    // Keys changed after the instant: their last change at or before it, unless a delete.
    // (A semi-join rather than a probe per key: the planner picks a nested loop when few keys
    // changed since the instant, hashing when many did.)
    lastBefore(`${tuple('h')} IN (SELECT ${keyList('c')} FROM ${f} AS c WHERE c.source_ts > $1)`) +
    ' UNION ALL ' +
    // Keys not changed since the instant but gone from _latest: a truncate after the instant
    // removed them. Run only when there is one: the test on the small table, at the top of the
    // branch, is a one-time filter above everything else in it (no worker is even started).
    lastBefore(
      `NOT EXISTS (SELECT FROM ${f} AS c WHERE ${match('c', 'h')} AND c.source_ts > $1)`,
      ` AND EXISTS (SELECT FROM ${t} AS a WHERE a.source_ts > $1)`,
    )
  );
}

/** The index serving as_of: the keys changed after an instant, from the index alone. */
export function asOfIndexSql(table: string, keys: string[], concurrently = false): string {
  return `CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}IF NOT EXISTS ${ident(asOfIndex(table))} ON public.${ident(factOf(table))} (source_ts) INCLUDE (${idents(keys)})`;
}

/** Everything the time-travel objects of one table need, with fingerprints of their definitions. */
export function timeTravelSql(input: TimeTravelInput): TimeTravelSql {
  const { table, keyColumns: keys, fact, latest } = input;
  const factColumns = [...fact.keys()];
  const notices: string[] = [];
  const clash = factColumns.filter((c) => !FACT_PIPELINE.has(c) && HISTORY_RESERVED.includes(c));
  const v = `public.${ident(historyView(table))}`;
  const fn = `public.${ident(asOfFunction(table))}(timestamp with time zone)`;

  let view: string | null = null;
  let viewFingerprint: string | null = null;
  if (clash.length) {
    notices.push(`${historyView(table)} is not created: ${table} has a column named ${clash.join(', ')}, which the history view computes`);
  } else {
    const create = `CREATE OR REPLACE VIEW ${v} AS ${historySelectSql(table, factColumns, keys)}`;
    viewFingerprint = fingerprint(create);
    const comment =
      `Versions of ${table} rows (type-2 history): valid_from/valid_to are source commit times, ` +
      `valid_to is null while current; maintained by the CDC processor.`;
    view = guarded(
      `view ${historyView(table)}`,
      [create],
      [`DROP VIEW IF EXISTS ${v}`, create.replace('CREATE OR REPLACE VIEW', 'CREATE VIEW')],
      `COMMENT ON VIEW ${v} IS ${literal(`${comment} [${FINGERPRINT_TAG} ${viewFingerprint}]`)}`,
    );
  }

  const body = asOfSelectSql(table, latest, fact, keys);
  const tag = dollarTag(body, 'fn');
  const createFn =
    `CREATE OR REPLACE FUNCTION ${fn.replace('(timestamp with time zone)', '(ts timestamp with time zone)')} ` +
    `RETURNS SETOF public.${ident(latestOf(table))} LANGUAGE sql STABLE PARALLEL SAFE AS ${tag}${body}${tag}`;
  const functionFingerprint = fingerprint(createFn);
  const fnComment =
    `The ${table} rows live in the source at ts (every transaction committed at or before ts), ` +
    `shaped like ${table}_latest; raises CDC01 for ts past public.pipeline_status.consistent_through ` +
    `(part of a transaction may be loaded then); maintained by the CDC processor.`;
  const functionSql = guarded(
    `function ${asOfFunction(table)}`,
    [createFn],
    // Another return type (an older layout): only a drop can change it.
    [`DROP FUNCTION IF EXISTS ${fn}`, createFn.replace('CREATE OR REPLACE FUNCTION', 'CREATE FUNCTION')],
    `COMMENT ON FUNCTION ${fn} IS ${literal(`${fnComment} [${FINGERPRINT_TAG} ${functionFingerprint}]`)}`,
  );
  return { view, function: functionSql, viewFingerprint, functionFingerprint, notices };
}

/** The fingerprint inside an object's comment (null: no comment or not ours). */
export function fingerprintOf(comment: string | null | undefined): string | null {
  const m = comment ? new RegExp(`\\[${FINGERPRINT_TAG} ([0-9a-f]+)\\]`).exec(comment) : null;
  return m ? m[1] : null;
}

function fingerprint(sql: string): string {
  return createHash('sha256').update(`${LAYOUT_VERSION}\n${sql}`).digest('hex').slice(0, 16);
}

/**
 * One DO block: try `attempt`; if that fails (an object of an older, incompatible layout: a
 * column order or return type CREATE OR REPLACE cannot change), `fallback` drops and creates it.
 * The drop is refused when the name is not ours to drop: an analyst's own view depends on ours
 * (2BP01), the name is another kind of object (42809), or another role owns it (42501). For these
 * only, the block leaves a WARNING and the batch goes on without the new definition (the change
 * history it derives from is intact; the writer tries again later). Any other error (including
 * one in the SQL generated here) fails the batch like any other write error: it must not hide
 * behind a warning while the view goes stale.
 */
function guarded(what: string, attempt: string[], fallback: string[], comment: string): string {
  const run = (list: string[]) => list.map((s) => `EXECUTE ${literal(s)};`).join(' ');
  const body =
    `BEGIN BEGIN ${run(attempt)} EXCEPTION WHEN OTHERS THEN BEGIN ${run(fallback)} ` +
    `EXCEPTION WHEN dependent_objects_still_exist OR wrong_object_type OR insufficient_privilege THEN ` +
    `RAISE WARNING 'time travel: cannot replace %: %', ${literal(what)}, SQLERRM; RETURN; END; END; ${run([comment])} END`;
  const tag = dollarTag(body, 'tt');
  return `DO ${tag}${body}${tag}`;
}

/** A dollar-quote tag that does not occur in the text it quotes. */
function dollarTag(text: string, base: string): string {
  let tag = `$${base}$`;
  for (let i = 0; text.includes(tag); i++) tag = `$${base}${i}$`;
  return tag;
}

/** Reads the installed state of one table's time-travel objects: one row for parseTimeTravelState. */
export function timeTravelCatalogSql(table: string): { text: string; values: string[] } {
  const q = (name: string) => `public.${ident(name)}`;
  return {
    text:
      // pg_description read directly: obj_description() is a SQL function, run (not inlined) at
      // every batch, and cost more than the rest of the batch's bookkeeping statement.
      `SELECT (SELECT d.description FROM pg_description AS d WHERE d.objoid = to_regclass($1) AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0) AS history_comment, ` +
      `(SELECT d.description FROM pg_description AS d WHERE d.objoid = to_regprocedure($2) AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0) AS as_of_comment, ` +
      `(SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($3)) AS index_valid, ` +
      `pg_relation_size(to_regclass($4)) AS fact_bytes, ` +
      `to_regclass($5) IS NOT NULL AS truncates_table`,
    values: [
      q(historyView(table)),
      `${q(asOfFunction(table))}(timestamp with time zone)`,
      q(asOfIndex(table)),
      q(factOf(table)),
      q(truncatesOf(table)),
    ],
  };
}

export function parseTimeTravelState(row: Record<string, unknown> | undefined): TimeTravelState {
  if (!row) return NOTHING_INSTALLED;
  return {
    historyView: fingerprintOf(row.history_comment as string | null),
    asOfFunction: fingerprintOf(row.as_of_comment as string | null),
    asOfIndex: row.index_valid === true,
    factBytes: row.fact_bytes === null || row.fact_bytes === undefined ? 0 : Number(row.fact_bytes),
    truncatesTable: row.truncates_table === true,
  };
}
