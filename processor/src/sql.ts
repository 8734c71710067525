// Identifier quoting: every name that comes from a schema is quoted, never spliced in raw.

export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function idents(names: string[]): string {
  return names.map(ident).join(', ');
}

export function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * Several data-modifying statements as one (each a CTE), so that they cost one round trip to
 * the server instead of one each: what weighs on a batch of a few changes when the machine is
 * busy. Each statement's $n are renumbered after those of the ones before it. The result has
 * one column per statement (its name), the number of rows it wrote, then one per read (a query of
 * one row at most, as JSON). The statements must touch different tables: CTEs share one snapshot
 * and do not see each other's rows.
 */
export function combineWrites(parts: Array<{ name: string } & Statement>, reads: Array<{ name: string } & Statement> = []): Statement {
  const values: unknown[] = [];
  const shifted = (p: Statement) => {
    const shift = values.length;
    values.push(...p.values);
    return p.text.replace(/\$(\d+)/g, (_, n) => `$${Number(n) + shift}`);
  };
  const ctes = parts.map((p) => `${ident(p.name)} AS (${shifted(p)} RETURNING 1)`);
  const columns = [
    ...parts.map((p) => `(SELECT count(*) FROM ${ident(p.name)})::int AS ${ident(p.name)}`),
    // A read (one row at most) rides along as a JSON object: one round trip for it too.
    ...reads.map((r) => `(SELECT row_to_json(r) FROM (${shifted(r)}) AS r) AS ${ident(r.name)}`),
  ];
  return { text: `${ctes.length ? `WITH ${ctes.join(', ')} ` : ''}SELECT ${columns.join(', ')}`, values };
}
