// Connecting to PostgreSQL with failures reported as one line that names the database.
import { Client, ClientConfig } from 'pg';
import { ConfigError } from './cli';
import { describeDbUrl } from './env';

export interface Db {
  readonly client: Client;
  readonly label: string;
}

export async function connectDb(url: string, label: string, appName: string, extra: Partial<ClientConfig> = {}): Promise<Db> {
  const client = new Client({ connectionString: url, application_name: appName, connectionTimeoutMillis: 5000, ...extra });
  // Without a listener a dropped connection would crash the process instead of failing the query.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw new ConfigError(`cannot connect to the ${label} database (${describeDbUrl(url)}): ${errText(e)}`);
  }
  return { client, label: `${label} database (${describeDbUrl(url)})` };
}

export function errText(e: unknown): string {
  const err = e as { message?: string; code?: string; errors?: unknown[] };
  // Node's happy-eyeballs connect reports an AggregateError with an empty message.
  if (!err?.message && Array.isArray(err?.errors) && err.errors.length) return errText(err.errors[0]);
  return err?.message || err?.code || String(e);
}

/** Whether a table exists and this role may read it; verify and load must say which is missing. */
export async function tableExists(client: Client, qualified: string): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [qualified]);
  return r.rows[0].ok;
}

export async function requireTable(db: Db, qualified: string, hint: string): Promise<void> {
  if (!(await tableExists(db.client, qualified))) throw new ConfigError(`table ${qualified} does not exist in the ${db.label}; ${hint}`);
}
