// Plans the DDL that makes `<table>_fact` and `<table>_latest` fit a table model: create them,
// add new columns, and report type changes it must not apply (they would rewrite history).
import type { Column, TableModel } from './columns';
import { INDEX_IN_BATCH_MAX_BYTES, NOTHING_INSTALLED, asOfIndexSql, timeTravelSql, type TimeTravelState } from './history';
import { derivedName } from './names';
import { createTruncatesSql, truncatesOf } from './truncate';
import { avroType } from './avro';
import { valueToText } from './copy-format';
import { ident, idents, literal } from './sql';

/** Pipeline columns of the history table, after the source's own columns. */
export const FACT_META: ReadonlyArray<readonly [string, string]> = [
  ['op', 'text'],
  ['source_ts', 'timestamp with time zone'],
  ['source_lsn', 'bigint'],
  ['source_txid', 'bigint'],
  ['kafka_topic', 'text'],
  ['kafka_partition', 'integer'],
  ['kafka_offset', 'bigint'],
  ['processed_at', 'timestamp with time zone'],
];

/** Pipeline columns of the current-row table. */
export const LATEST_META: ReadonlyArray<readonly [string, string]> = [
  ['source_ts', 'timestamp with time zone'],
  ['source_lsn', 'bigint'],
  ['processed_at', 'timestamp with time zone'],
];

const META_NAMES = new Set(FACT_META.map(([n]) => n));

export const factTable = (table: string): string => derivedName(table, '_fact');
export const latestTable = (table: string): string => derivedName(table, '_latest');
/** One row per source TRUNCATE of the table (see truncate.ts). */
export const truncatesTable = truncatesOf;
export const factEventIndex = (table: string): string => derivedName(table, '_fact_event_uq');

/** Columns a table has in the warehouse, in order: name → canonical type. Null: no such table. */
export type Existing = Map<string, string> | null;

export interface DdlPlan {
  statements: string[];
  /** Columns whose type the schema changed incompatibly; events of this model are rejected. */
  conflicts: string[];
  /** Worth a warning in the log, but nothing to reject (time-travel objects that cannot be made). */
  notices: string[];
  /** Why rows the source did not send again are now incomplete in the warehouse (a column added
   *  with a value the schema cannot carry, a rename): the table needs a new snapshot. */
  resnapshot: string[];
}

/**
 * The DDL that makes the warehouse fit `model`: `<table>_fact`, `<table>_latest`, and the
 * time-travel objects derived from them (`<table>_history`, `<table>_as_of(ts)`, the index
 * serving it; see history.ts). `timeTravel` is what the warehouse has installed of the latter:
 * they are (re)created whenever their definition (which follows the columns) differs from the
 * installed one. Without it, they are planned only with a new fact table.
 */
export function planDdl(model: TableModel, fact: Existing, latest: Existing, timeTravel?: TimeTravelState): DdlPlan {
  const clash = model.columns.find((c) => META_NAMES.has(c.name));
  if (clash) {
    return { statements: [], conflicts: [`column ${clash.name} of ${model.table} has the name of a pipeline column`], notices: [], resnapshot: [] };
  }
  if (model.keyColumns.length === 0) {
    return { statements: [], conflicts: [`table ${model.table} has no primary key`], notices: [], resnapshot: [] };
  }
  const statements: string[] = [];
  const conflicts: string[] = [];
  const keys = idents(model.keyColumns);
  const f = factTable(model.table);
  const l = latestTable(model.table);

  // History rows of deletes may carry only the key, so only key columns are NOT NULL.
  const columnDef = (c: Column) => `${ident(c.name)} ${c.pgType}${model.keyColumns.includes(c.name) ? ' NOT NULL' : ''}`;
  const meta = (list: ReadonlyArray<readonly [string, string]>) => list.map(([n, t]) => `${ident(n)} ${t}`);

  if (!fact) {
    statements.push(
      `CREATE TABLE IF NOT EXISTS ${ident(f)} (${[...model.columns.map(columnDef), ...meta(FACT_META)].join(', ')})`,
      // One row per source change: a re-sent event (same key, position and op) is recognised
      // here. Led by the key, the same index serves a key's history in source order.
      `CREATE UNIQUE INDEX IF NOT EXISTS ${ident(factEventIndex(model.table))} ON ${ident(f)} (${keys}, source_lsn, op)`,
    );
  } else {
    addColumns(f, model, fact, statements, conflicts);
  }
  const resnapshot = fact ? resnapshotReasons(model, fact) : [];
  if (!latest) {
    statements.push(
      // Room in each page lets an update of a row stay on its page (a HOT update: no index write).
      `CREATE TABLE IF NOT EXISTS ${ident(l)} (${[...model.columns.map(columnDef), ...meta(LATEST_META)].join(', ')}, PRIMARY KEY (${keys})) WITH (fillfactor = 80)`,
    );
  } else {
    addColumns(l, model, latest, statements, conflicts);
  }

  // Read by the current-row merge and by the time-travel objects: made with the fact table, or
  // for a warehouse from before truncates were recorded.
  if (!fact || (timeTravel && !timeTravel.truncatesTable)) statements.push(createTruncatesSql(model.table));

  const notices: string[] = [];
  // Built with the table, while it is empty. On an existing table only if it is small: an index
  // build blocks the batch transaction for as long as it takes.
  if (!fact) statements.push(asOfIndexSql(model.table, model.keyColumns));
  const installed = timeTravel ?? (fact ? null : NOTHING_INSTALLED);
  if (installed) {
    if (fact && !installed.asOfIndex) {
      if (installed.factBytes <= INDEX_IN_BATCH_MAX_BYTES) statements.push(asOfIndexSql(model.table, model.keyColumns));
      else notices.push(`${f} has no index for ${model.table}_as_of (slower, still exact); build it without blocking the pipeline: ${asOfIndexSql(model.table, model.keyColumns, true)}`);
    }
    const tt = timeTravelSql({ table: model.table, keyColumns: model.keyColumns, fact: afterDdl(fact, model, FACT_META), latest: afterDdl(latest, model, LATEST_META) });
    if (tt.view && tt.viewFingerprint !== installed.historyView) statements.push(tt.view);
    if (tt.functionFingerprint !== installed.asOfFunction) statements.push(tt.function);
    notices.push(...tt.notices);
  }
  return { statements, conflicts: [...new Set(conflicts)], notices, resnapshot };
}

/** A table's columns once the planned DDL has run: as created, or the existing ones plus the
 *  model's new columns at the end (ADD COLUMN appends). Types already there stay. */
function afterDdl(existing: Existing, model: TableModel, meta: ReadonlyArray<readonly [string, string]>): Map<string, string> {
  if (!existing) return new Map<string, string>([...model.columns.map((c) => [c.name, c.pgType] as [string, string]), ...meta.map(([n, t]) => [n, t] as [string, string])]);
  const out = new Map(existing);
  for (const c of model.columns) if (!out.has(c.name)) out.set(c.name, c.pgType);
  return out;
}

function addColumns(table: string, model: TableModel, existing: Map<string, string>, statements: string[], conflicts: string[]): void {
  for (const c of model.columns) {
    const have = existing.get(c.name);
    if (have === undefined) {
      // Debezium sends nothing for the rows an ADD COLUMN … DEFAULT filled at the source: the
      // schema's default gives them the same value here (for _fact too, so that as_of agrees
      // whichever table it reads a row from). Constant defaults only: PostgreSQL stores them
      // without rewriting the table.
      const d = columnDefault(c);
      const def = d && 'literal' in d ? ` DEFAULT ${literal(d.literal)}::${c.pgType}` : '';
      statements.push(`ALTER TABLE ${ident(table)} ADD COLUMN IF NOT EXISTS ${ident(c.name)} ${c.pgType}${def}`);
    } else if (have !== c.pgType) {
      conflicts.push(`column ${c.name} of ${model.table} changed type from ${have} to ${c.pgType}`);
    }
  }
}

/** What a column added at the source holds in rows no event has touched since: a constant
 *  (the Avro field's default, which Debezium takes from the column's default), null (a
 *  nullable column without one: nothing to do), or unknown (a reason). */
export function columnDefault(c: Column): { literal: string } | { unknown: string } | null {
  const field = c.avroField;
  const nullable = Array.isArray(field?.type) && field.type.includes('null');
  if (!field || !('default' in field) || field.default === null) {
    return nullable || !field ? null : { unknown: `column ${c.name} was added NOT NULL without a default in the schema (a volatile default such as now(), or a rename)` };
  }
  let value: unknown;
  try {
    value = (avroType({ type: 'record', name: 'ColumnDefault', fields: [field] }) as any).fields[0].defaultValue();
  } catch (err) {
    return { unknown: `the default of column ${c.name} cannot be read (${(err as Error).message})` };
  }
  if (value === null || value === undefined) return null;
  // Debezium gives a column whose default is a function of the clock (now(), CURRENT_DATE …)
  // the epoch as its default: each source row got the time of the ALTER instead.
  if (/^(timestamp|date|time)/.test(c.pgType) && (value === 0 || value === 0n || (typeof value === 'string' && Date.parse(value) === 0))) {
    return { unknown: `column ${c.name} was added with a default the schema cannot carry (a function of the clock, such as now())` };
  }
  // A long beyond 2^53 went through a JSON number in the registry: not exact.
  if (typeof value === 'bigint' && (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER))) {
    return { unknown: `the default of column ${c.name} is beyond exact JSON numbers` };
  }
  return { literal: valueToText(c.kind, value) };
}

/** Why an existing table's current rows no longer match the source after this schema change. */
function resnapshotReasons(model: TableModel, fact: Map<string, string>): string[] {
  const added = model.columns.filter((c) => !fact.has(c.name));
  if (!added.length) return [];
  const reasons: string[] = [];
  for (const c of added) {
    const d = columnDefault(c);
    if (d && 'unknown' in d) reasons.push(d.unknown);
  }
  // A rename reaches the schema as one column gone and one new: the new one is null in every
  // row the source did not send again. (A column dropped long ago looks the same: a snapshot
  // too many is the price of never missing a rename.)
  const present = new Set(model.columns.map((c) => c.name));
  const gone = dataColumns(fact).filter((n) => !present.has(n));
  if (gone.length) {
    reasons.push(`columns ${added.map((c) => c.name).join(', ')} appeared while ${gone.join(', ')} ${gone.length === 1 ? 'is' : 'are'} no longer in the schema (a rename?)`);
  }
  return reasons;
}

/** The source columns of a warehouse table (its pipeline columns left out), in table order. */
export function dataColumns(fact: Map<string, string>): string[] {
  return [...fact.keys()].filter((n) => !META_NAMES.has(n));
}
