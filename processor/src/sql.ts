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
 * one column per statement (its name), the number of rows it wrote. The statements must touch
 * different tables: CTEs share one snapshot and do not see each other's rows.
 */
export function combineWrites(parts: Array<{ name: string } & Statement>): Statement {
  const values: unknown[] = [];
  const ctes = parts.map((p) => {
    const shift = values.length;
    values.push(...p.values);
    return `${ident(p.name)} AS (${p.text.replace(/\$(\d+)/g, (_, n) => `$${Number(n) + shift}`)} RETURNING 1)`;
  });
  const counts = parts.map((p) => `(SELECT count(*) FROM ${ident(p.name)})::int AS ${ident(p.name)}`);
  return { text: `WITH ${ctes.join(', ')} SELECT ${counts.join(', ')}`, values };
}
