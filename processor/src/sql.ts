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
