import { tableModel } from '../src/columns';
import { FACT_META, LATEST_META, planDdl } from '../src/ddl';
import {
  INDEX_IN_BATCH_MAX_BYTES, NOTHING_INSTALLED, asOfSelectSql, fingerprintOf, historyColumns, historySelectSql,
  parseTimeTravelState, timeTravelCatalogSql, timeTravelSql, type TimeTravelState,
} from '../src/history';
import { envelopeSchema, keySchema, ordersValueFields } from './fixtures/debezium';

const model = tableModel('orders', envelopeSchema('orders', ordersValueFields), keySchema('orders'));
const withNote = tableModel('orders', envelopeSchema('orders', [...ordersValueFields, { name: 'gift_note', type: ['null', 'string'], default: null }]), keySchema('orders'));
const DATA = ['order_id', 'customer_id', 'product_name', 'amount', 'status', 'created_at', 'updated_at'];

/** Warehouse tables as planDdl creates them: data columns, pipeline columns, later columns. */
const table = (meta: ReadonlyArray<readonly [string, string]>, extra: Array<[string, string]> = []) =>
  new Map<string, string>([...model.columns.map((c) => [c.name, c.pgType] as [string, string]), ...meta.map(([n, t]) => [n, t] as [string, string]), ...extra]);
const fact = (extra: Array<[string, string]> = []) => table(FACT_META, extra);
const latest = (extra: Array<[string, string]> = []) => table(LATEST_META, extra);

/** What the warehouse would report after running a plan's time-travel statements. */
function installedAfter(m = model, f = fact(), l = latest()): TimeTravelState {
  const sql = timeTravelSql({ table: m.table, keyColumns: m.keyColumns, fact: f, latest: l });
  return { historyView: sql.viewFingerprint, asOfFunction: sql.functionFingerprint, asOfIndex: true, factBytes: 8192, truncatesTable: true };
}

describe('history view', () => {
  it('puts valid_from, valid_to, is_current, op and the position where the pipeline columns start', () => {
    expect(historyColumns([...fact().keys()])).toEqual([...DATA, 'valid_from', 'valid_to', 'is_current', 'op', 'source_lsn', 'source_txid', 'processed_at']);
  });

  it('keeps source columns added later at the end, so CREATE OR REPLACE VIEW can add them', () => {
    const before = historyColumns([...fact().keys()]);
    const after = historyColumns([...fact([['gift_note', 'text']]).keys()]);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length)).toEqual(['gift_note']);
  });

  it('derives versions from the fact table in source order; a delete only closes the version before it', () => {
    const sql = historySelectSql('orders', [...fact().keys()], ['order_id']);
    expect(sql).toContain('f.source_ts AS valid_from');
    // A version ends at the next change of its key, or at a truncate before it (looked up only
    // when the table has one).
    expect(sql).toContain('CASE WHEN EXISTS (SELECT FROM public."orders_truncates") THEN (SELECT t.source_lsn FROM public."orders_truncates" AS t WHERE t.source_lsn > f.source_lsn AND t.source_ts <= (SELECT public.cdc_visible_through(\'orders\')) ORDER BY t.source_lsn LIMIT 1) END AS "__next_truncate_lsn"');
    expect(sql).toContain('CASE WHEN f."__next_truncate_lsn" < coalesce(lead(f.source_lsn) OVER w, f."__next_truncate_lsn" + 1) THEN (SELECT t.source_ts FROM public."orders_truncates" AS t WHERE t.source_lsn = f."__next_truncate_lsn") ELSE lead(f.source_ts) OVER w END AS valid_to');
    expect(sql).toContain('lead(f.source_lsn) OVER w IS NULL AND f."__next_truncate_lsn" IS NULL AS is_current');
    expect(sql).toContain('WINDOW w AS (PARTITION BY f."order_id" ORDER BY f.source_lsn)');
    expect(sql).toMatch(/\) AS v WHERE v\.op <> 'd'$/);
    // The window is computed over every change (deletes included) before deletes are dropped.
    expect(sql.indexOf("v.op <> 'd'")).toBeGreaterThan(sql.indexOf('WINDOW w'));
  });

  it('partitions by every key column of a composite key', () => {
    const sql = historySelectSql('lines', ['order_id', 'line_no', 'qty', 'op', 'source_ts', 'source_lsn'], ['order_id', 'line_no']);
    expect(sql).toContain('PARTITION BY f."order_id", f."line_no" ORDER BY f.source_lsn');
  });
});

describe('as_of function', () => {
  const body = asOfSelectSql('orders', latest(), fact(), ['order_id']);

  it('takes keys unchanged since the instant from _latest, and the others from the history', () => {
    const [fromLatest, fromHistory, fromTruncated] = body.split(' UNION ALL ');
    expect(fromLatest).toBe(
      'SELECT l."order_id", l."customer_id", l."product_name", l."amount", l."status", l."created_at", l."updated_at", l."source_ts", l."source_lsn", l."processed_at" ' +
        'FROM public."orders_latest" AS l WHERE public.cdc_as_of_allowed(\'orders\', $1) AND l.source_ts <= $1',
    );
    // Transactions committed at or before the instant count; the last change by LSN wins.
    expect(fromHistory).toContain('WHERE h.source_ts <= $1 AND h."order_id" IN (SELECT c."order_id" FROM public."orders_fact" AS c WHERE c.source_ts > $1)');
    expect(fromHistory).toContain('ORDER BY h."order_id", h.source_lsn DESC) AS x');
    expect(fromHistory).toMatch(/WHERE x\.op <> 'd' AND NOT EXISTS \(SELECT FROM public\."orders_truncates" AS t WHERE t\.source_ts <= \$1 AND t\.source_lsn > x\.source_lsn\)$/);
    // Keys a truncate after the instant removed from _latest, only when there is one.
    expect(fromTruncated).toContain('NOT EXISTS (SELECT FROM public."orders_fact" AS c WHERE c."order_id" = h."order_id" AND c.source_ts > $1)');
    expect(fromTruncated).toMatch(/ AND EXISTS \(SELECT FROM public\."orders_truncates" AS a WHERE a\.source_ts > \$1\)$/);
    // A key never comes from both halves.
    expect(fromHistory).toContain('NOT EXISTS (SELECT FROM public."orders_latest" AS n WHERE n."order_id" = h."order_id" AND n.source_ts <= $1)');
  });

  it('returns the columns of _latest in its order, later columns included', () => {
    const sql = asOfSelectSql('orders', latest([['gift_note', 'text']]), fact([['gift_note', 'text']]), ['order_id']);
    expect(sql).toContain('l."processed_at", l."gift_note" FROM public."orders_latest"');
    expect(sql).toContain('x."processed_at", x."gift_note" FROM (SELECT DISTINCT ON');
  });

  it('matches composite keys as tuples', () => {
    const l = new Map([['a', 'bigint'], ['b', 'text'], ['v', 'text'], ['source_ts', 't'], ['source_lsn', 'bigint'], ['processed_at', 't']]);
    const sql = asOfSelectSql('t', l, new Map([...l, ['op', 'text']]), ['a', 'b']);
    expect(sql).toContain('(h."a", h."b") IN (SELECT c."a", c."b" FROM');
    expect(sql).toContain('DISTINCT ON (h."a", h."b")');
    expect(sql).toContain('n."a" = h."a" AND n."b" = h."b"');
  });

  it('is an inlinable SQL function returning rows shaped like _latest', () => {
    const fn = timeTravelSql({ table: 'orders', keyColumns: ['order_id'], fact: fact(), latest: latest() }).function;
    expect(fn).toContain(`CREATE OR REPLACE FUNCTION public."orders_as_of"(ts timestamp with time zone) RETURNS SETOF public."orders_latest" LANGUAGE sql STABLE PARALLEL SAFE AS $fn$`);
    // STRICT, SECURITY DEFINER or SET would stop PostgreSQL from inlining it into the caller's plan.
    expect(fn).not.toMatch(/STRICT|SECURITY DEFINER| SET /);
  });
});

describe('planning time travel with the tables', () => {
  it('creates view, function and index with a new fact table', () => {
    const plan = planDdl(model, null, null, NOTHING_INSTALLED);
    expect(plan.statements.slice(0, 3).map((s) => s.split(' (')[0])).toEqual([
      'CREATE TABLE IF NOT EXISTS "orders_fact"',
      'CREATE UNIQUE INDEX IF NOT EXISTS "orders_fact_event_uq" ON "orders_fact"',
      'CREATE TABLE IF NOT EXISTS "orders_latest"',
    ]);
    expect(plan.statements[3]).toMatch(/^CREATE TABLE IF NOT EXISTS public\."orders_truncates" \(source_lsn bigint PRIMARY KEY, /);
    expect(plan.statements[4]).toBe('CREATE INDEX IF NOT EXISTS "orders_fact_ts_idx" ON public."orders_fact" (source_ts) INCLUDE ("order_id")');
    expect(plan.statements[5]).toMatch(/^DO \$tt\$BEGIN .*CREATE OR REPLACE VIEW public\."orders_history" AS /);
    expect(plan.statements[6]).toMatch(/^DO \$tt\$BEGIN .*CREATE OR REPLACE FUNCTION public\."orders_as_of"/);
    expect(plan.statements).toHaveLength(7);
    expect(plan.notices).toEqual([]);
    // Without the installed state, a new fact table still gets them (nothing can exist yet).
    expect(planDdl(model, null, null).statements).toEqual(plan.statements);
  });

  it('plans nothing when what is installed matches', () => {
    expect(planDdl(model, fact(), latest(), installedAfter()).statements).toEqual([]);
  });

  it('replaces view and function in the same transaction as a column is added', () => {
    const plan = planDdl(withNote, fact(), latest(), installedAfter());
    expect(plan.statements[0]).toBe('ALTER TABLE "orders_fact" ADD COLUMN IF NOT EXISTS "gift_note" text');
    expect(plan.statements[1]).toBe('ALTER TABLE "orders_latest" ADD COLUMN IF NOT EXISTS "gift_note" text');
    expect(plan.statements[2]).toContain('v."processed_at", v."gift_note" FROM (SELECT');
    expect(plan.statements[3]).toContain('l."processed_at", l."gift_note" FROM public."orders_latest"');
    expect(plan.statements).toHaveLength(4);
    // Once done, the next plan for the same columns is empty.
    const now = installedAfter(withNote, fact([['gift_note', 'text']]), latest([['gift_note', 'text']]));
    expect(planDdl(withNote, fact([['gift_note', 'text']]), latest([['gift_note', 'text']]), now).statements).toEqual([]);
  });

  it('adds view, function and (for a small table) the index to tables made before time travel existed', () => {
    const plan = planDdl(model, fact(), latest(), { ...NOTHING_INSTALLED, factBytes: 1024 * 1024 });
    expect(plan.statements[0]).toMatch(/^CREATE TABLE IF NOT EXISTS public\."orders_truncates"/);
    expect(plan.statements[1]).toBe('CREATE INDEX IF NOT EXISTS "orders_fact_ts_idx" ON public."orders_fact" (source_ts) INCLUDE ("order_id")');
    expect(plan.statements[2]).toContain('CREATE OR REPLACE VIEW public."orders_history"');
    expect(plan.statements[3]).toContain('CREATE OR REPLACE FUNCTION public."orders_as_of"');
    expect(plan.notices).toEqual([]);
  });

  it('never builds the index on a big table inside a batch: it says how to build it instead', () => {
    const plan = planDdl(model, fact(), latest(), { ...NOTHING_INSTALLED, factBytes: INDEX_IN_BATCH_MAX_BYTES + 1 });
    expect(plan.statements.some((s) => s.startsWith('CREATE INDEX'))).toBe(false);
    expect(plan.statements).toHaveLength(3);
    expect(plan.notices).toEqual([
      'orders_fact has no index for orders_as_of (slower, still exact); build it without blocking the pipeline: ' +
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "orders_fact_ts_idx" ON public."orders_fact" (source_ts) INCLUDE ("order_id")',
    ]);
  });

  it('leaves existing tables alone when the installed state is not given (tables only)', () => {
    expect(planDdl(withNote, fact(), latest()).statements).toEqual([
      'ALTER TABLE "orders_fact" ADD COLUMN IF NOT EXISTS "gift_note" text',
      'ALTER TABLE "orders_latest" ADD COLUMN IF NOT EXISTS "gift_note" text',
    ]);
  });

  it('skips the view, not the events, when a source column has a name the view computes', () => {
    const odd = tableModel('t', envelopeSchema('t', [{ name: 'id', type: 'long' }, { name: 'valid_from', type: 'string' }]), keySchema('t', [{ name: 'id', type: 'long' }]));
    const plan = planDdl(odd, null, null, NOTHING_INSTALLED);
    expect(plan.conflicts).toEqual([]);
    expect(plan.statements.some((s) => s.includes('VIEW'))).toBe(false);
    expect(plan.statements.some((s) => s.includes('FUNCTION public."t_as_of"'))).toBe(true);
    expect(plan.notices).toEqual(['t_history is not created: t has a column named valid_from, which the history view computes']);
  });
});

describe('running the DDL safely', () => {
  const sql = timeTravelSql({ table: 'orders', keyColumns: ['order_id'], fact: fact(), latest: latest() });

  it('drops and makes again an incompatible old object; only a drop refused for an object not ours is a warning', () => {
    expect(sql.view).toMatch(/^DO \$tt\$BEGIN BEGIN EXECUTE 'CREATE OR REPLACE VIEW .* EXCEPTION WHEN OTHERS THEN BEGIN EXECUTE 'DROP VIEW IF EXISTS public\."orders_history"'; EXECUTE 'CREATE VIEW /);
    expect(sql.view).toContain(`EXCEPTION WHEN dependent_objects_still_exist OR wrong_object_type OR insufficient_privilege THEN RAISE WARNING 'time travel: cannot replace %: %', 'view orders_history', SQLERRM; RETURN; END; END; EXECUTE 'COMMENT ON VIEW`);
    expect(sql.view).not.toContain('WHEN OTHERS THEN RAISE WARNING');
    expect(sql.function).toContain(`EXECUTE 'DROP FUNCTION IF EXISTS public."orders_as_of"(timestamp with time zone)'`);
    // Nothing an analyst built on top is ever dropped with it.
    expect(`${sql.view} ${sql.function}`).not.toContain('CASCADE');
  });

  it('records a fingerprint of the definition in the comment, and reads it back', () => {
    expect(sql.view).toContain(`[cdc-time-travel ${sql.viewFingerprint}]`);
    expect(sql.function).toContain(`COMMENT ON FUNCTION public."orders_as_of"(timestamp with time zone) IS`);
    expect(fingerprintOf(`Versions of orders rows. [cdc-time-travel ${sql.viewFingerprint}]`)).toBe(sql.viewFingerprint);
    expect(fingerprintOf('a view someone else made')).toBeNull();
    expect(fingerprintOf(null)).toBeNull();
    expect(sql.viewFingerprint).not.toBe(timeTravelSql({ table: 'orders', keyColumns: ['order_id'], fact: fact([['x', 'text']]), latest: latest([['x', 'text']]) }).viewFingerprint);
  });

  it('quotes names from schemas, inside quoted SQL inside dollar quotes', () => {
    const odd = tableModel('we"i\'rd', envelopeSchema('weird', [{ name: 'id$fn$', type: 'long' }, { name: "o'k $tt$", type: 'string' }]), keySchema('weird', [{ name: 'id$fn$', type: 'long' }]));
    const plan = planDdl(odd, null, null, NOTHING_INSTALLED);
    const view = plan.statements.find((s) => s.includes('VIEW'))!;
    const fn = plan.statements.find((s) => s.includes('FUNCTION'))!;
    // The DO body is quoted with a tag that does not occur in it, and so is the function body.
    expect(view.startsWith('DO $tt0$')).toBe(true);
    expect(view.endsWith('$tt0$')).toBe(true);
    expect(fn).toContain('AS $fn0$SELECT');
    // Identifiers are double-quoted, then single quotes doubled for EXECUTE '...'.
    expect(view).toContain(`public."we""i''rd_history"`);
    expect(view).toContain(`f."o''k $tt$"`);
  });

  it('reads the installed state from the catalog', () => {
    const q = timeTravelCatalogSql('orders');
    expect(q.values).toEqual(['public."orders_history"', 'public."orders_as_of"(timestamp with time zone)', 'public."orders_fact_ts_idx"', 'public."orders_fact"', 'public."orders_truncates"']);
    expect(parseTimeTravelState({ history_comment: 'x [cdc-time-travel 00ff]', as_of_comment: null, index_valid: true, fact_bytes: '81920', truncates_table: true }))
      .toEqual({ historyView: '00ff', asOfFunction: null, asOfIndex: true, factBytes: 81920, truncatesTable: true });
    expect(parseTimeTravelState({ history_comment: null, as_of_comment: null, index_valid: null, fact_bytes: null, truncates_table: false })).toEqual(NOTHING_INSTALLED);
  });
});
