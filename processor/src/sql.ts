// Quoting: every name that comes from a schema is quoted, never spliced in raw. pg's escapers are
// the one way to quote; escapeLiteral writes E'...' when the text holds a backslash, so a literal
// reads back the same whatever standard_conforming_strings says.
import { escapeIdentifier, escapeLiteral } from 'pg';

export const ident: (name: string) => string = escapeIdentifier;

export function idents(names: string[]): string {
  return names.map(ident).join(', ');
}

export const literal: (text: string) => string = escapeLiteral;

export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * Several data-modifying statements as one (each a CTE), so that they cost one round trip to
 * the server instead of one each: what weighs on a batch of a few changes when the machine is
 * busy. Each statement's $n are renumbered after those of the ones before it. The result has
 * one column per statement (its name), the number of rows it wrote. The statements must touch
 * different tables: CTEs share one snapshot and do not see each other's rows.
 */
export function combineWrites(parts: Array<{ name: string } & Statement>): Statement {
  const values: unknown[] = [];
  const shifted = (p: Statement) => {
    const shift = values.length;
    values.push(...p.values);
    return p.text.replace(/\$(\d+)/g, (_, n) => `$${Number(n) + shift}`);
  };
  const ctes = parts.map((p) => `${ident(p.name)} AS (${shifted(p)} RETURNING 1)`);
  const columns = parts.map((p) => `(SELECT count(*) FROM ${ident(p.name)})::int AS ${ident(p.name)}`);
  return { text: `WITH ${ctes.join(', ')} SELECT ${columns.join(', ')}`, values };
}

/**
 * The statement with its parameters written in as literals, for the simple query protocol: it
 * carries several statements in one message (one round trip) but no parameters. Takes what the
 * writer binds: text, numbers, booleans, null, and arrays of those (as node-postgres would send
 * them: an array literal, each element quoted). The text's casts ($1::bigint[]) type them.
 */
export function inlineParams(s: Statement): string {
  return s.text.replace(/\$(\d+)/g, (_, n) => {
    const i = Number(n) - 1;
    if (i >= s.values.length) throw new RangeError(`statement refers to $${n} but has ${s.values.length} values`);
    return valueLiteral(s.values[i]);
  });
}

function valueLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (Array.isArray(v)) return escapeLiteral(arrayText(v));
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return escapeLiteral(String(v));
  throw new TypeError(`a ${typeof v} parameter cannot be written as a literal`);
}

function arrayText(items: unknown[]): string {
  const element = (e: unknown): string => {
    if (e === null || e === undefined) return 'NULL';
    if (Array.isArray(e)) return arrayText(e);
    if (typeof e === 'object') throw new TypeError('an object array element cannot be written as a literal');
    return `"${String(e).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  };
  return `{${items.map(element).join(',')}}`;
}
