// Declarative per-table rules (processor/rules.json by default). A rule that fails sends the
// event to cdc.rejected_events with the reason; the stream goes on.
import { compareDecimal } from './decimal';
import type { ChangeEvent } from './decode';

export type Rule =
  | { column: string; rule: 'required' }
  | { column: string; rule: 'min'; value: string }
  | { column: string; rule: 'max'; value: string }
  | { column: string; rule: 'oneOf'; values: string[] }
  | { column: string; rule: 'pattern'; value: string };

export type Rules = Record<string, Rule[]>;

const RULE_NAMES = new Set(['required', 'min', 'max', 'oneOf', 'pattern']);

/** Checks the shape of a rules document; throws one line naming the offending entry. */
export function parseRules(doc: unknown, origin: string): Rules {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${origin}: expected an object of table → rules`);
  const rules: Rules = {};
  for (const [table, list] of Object.entries(doc)) {
    if (!Array.isArray(list)) throw new Error(`${origin}: rules of table ${table} must be a list`);
    rules[table] = list.map((r: any, i: number) => {
      const where = `${origin}: ${table}[${i}]`;
      if (typeof r?.column !== 'string') throw new Error(`${where}: "column" must be a string`);
      if (!RULE_NAMES.has(r.rule)) throw new Error(`${where}: unknown rule ${JSON.stringify(r.rule)} (one of ${[...RULE_NAMES].join(', ')})`);
      if ((r.rule === 'min' || r.rule === 'max') && !/^-?\d+(\.\d+)?$/.test(String(r.value))) throw new Error(`${where}: "value" must be a decimal`);
      if (r.rule === 'oneOf' && !(Array.isArray(r.values) && r.values.every((v: unknown) => typeof v === 'string'))) throw new Error(`${where}: "values" must be a list of strings`);
      if (r.rule === 'pattern') new RegExp(r.value);
      return { ...r, value: r.value === undefined ? undefined : String(r.value) } as Rule;
    });
  }
  return rules;
}

function asComparable(v: unknown): string | null {
  if (typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number') return String(v);
  return null;
}

export interface ValidationFailure {
  column: string;
  rule: Rule['rule'];
  /** Column and rule, never the row's value: reasons reach logs and the analysts' summary view. */
  reason: string;
  /** The offending value, for debug logs only (cdc.rejected_events.payload keeps the whole event). */
  value: unknown;
}

/** The first rule the event breaks; null when it passes. Deletes are not validated. */
export function validationFailure(event: ChangeEvent, rules: Rules): ValidationFailure | null {
  if (event.op === 'd') return null;
  for (const r of rules[event.table] ?? []) {
    const v = event.row[r.column];
    const broken = brokenBy(r, v);
    if (broken) return { column: r.column, rule: r.rule, reason: `${r.column}: ${broken}`, value: v };
  }
  return null;
}

/** The first rule the event breaks, as a reason text; null when it passes. */
export function validate(event: ChangeEvent, rules: Rules): string | null {
  return validationFailure(event, rules)?.reason ?? null;
}

// Compiled once per pattern, not once per event.
const patterns = new Map<string, RegExp>();
function patternOf(source: string): RegExp {
  let re = patterns.get(source);
  if (!re) patterns.set(source, (re = new RegExp(source)));
  return re;
}

/** What the value breaks of the rule (worded from the rule alone), or null. */
function brokenBy(r: Rule, v: unknown): string | null {
  switch (r.rule) {
    case 'required':
      return v === null || v === undefined || (typeof v === 'string' && v.trim() === '') ? 'required' : null;
    case 'min':
    case 'max': {
      if (v === null || v === undefined) return null;
      const text = asComparable(v);
      if (text === null) return 'not a number';
      let cmp: number;
      try {
        cmp = compareDecimal(text, r.value);
      } catch {
        return 'not a number';
      }
      if (r.rule === 'min' && cmp < 0) return `below min ${r.value}`;
      if (r.rule === 'max' && cmp > 0) return `above max ${r.value}`;
      return null;
    }
    case 'oneOf':
      return v !== null && v !== undefined && !r.values.includes(String(v)) ? `not one of ${r.values.join(', ')}` : null;
    case 'pattern':
      return v !== null && v !== undefined && !patternOf(r.value).test(String(v)) ? `does not match ${r.value}` : null;
  }
}
