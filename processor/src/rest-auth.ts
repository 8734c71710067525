// HTTP basic credentials for Kafka Connect's REST API and the schema registry (SECURITY=on, or an
// external Connect or registry that asks for them). The one place where every TypeScript caller
// (processor, e2e, bench, seed) turns a user and password into the Authorization header.
import * as fs from 'fs';

export interface BasicCredentials {
  username: string;
  password: string;
}

/** The Authorization header for these credentials; none without credentials. */
export function authHeaders(creds: BasicCredentials | null | undefined): Record<string, string> {
  if (!creds) return {};
  return { Authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}` };
}

/** User and password as `make env` prints them (CONNECT_USERNAME / CONNECT_PASSWORD,
 *  SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD); null when no user is set. */
export function credentialsFromEnv(env: Record<string, string | undefined>, service: 'CONNECT' | 'SCHEMA_REGISTRY'): BasicCredentials | null {
  const username = env[`${service}_USERNAME`];
  return username ? { username, password: env[`${service}_PASSWORD`] ?? '' } : null;
}

/**
 * Resolves one service's credentials from its configuration keys: a user needs exactly one of a
 * password or a password file (its first line); either without a user is a mistake. Throws an
 * Error whose message names the culprit key (`<prefix>.username` …); never the password itself.
 */
export function resolveCredentials(
  prefix: string,
  vars: { username: string; password: string; passwordFile: string },
  given: { username: string; password: string; passwordFile: string },
): BasicCredentials | null {
  const { username, password, passwordFile } = given;
  if (!username) {
    if (password) throw new Error(`${prefix}.password (${vars.password}) is set but ${prefix}.username (${vars.username}) is not`);
    if (passwordFile) throw new Error(`${prefix}.passwordFile (${vars.passwordFile}) is set but ${prefix}.username (${vars.username}) is not`);
    return null;
  }
  if (password && passwordFile) throw new Error(`${prefix}.password (${vars.password}) and ${prefix}.passwordFile (${vars.passwordFile}) are both set: give one`);
  if (passwordFile) {
    let text: string;
    try {
      text = fs.readFileSync(passwordFile, 'utf8');
    } catch (err) {
      throw new Error(`${prefix}.passwordFile (${vars.passwordFile}): cannot read ${passwordFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const first = text.split(/\r?\n/)[0];
    if (!first) throw new Error(`${prefix}.passwordFile (${vars.passwordFile}): ${passwordFile} is empty`);
    return { username, password: first };
  }
  if (!password) throw new Error(`${prefix}.username (${vars.username}) is set but neither ${prefix}.password (${vars.password}) nor ${prefix}.passwordFile (${vars.passwordFile})`);
  return { username, password };
}
