// The connection settings the tools read from the environment (`bash infra/with-env.sh`).
import { ConfigError } from './cli';

export const ENV_HINT = 'run through make, or `bash infra/with-env.sh node dist/seed/...`';

export function requireEnv(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new ConfigError(`${name} is not set (${ENV_HINT})`);
  return v;
}

export function optionalEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/** user@host:port/db for messages: never print a password. */
export function describeDbUrl(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${u.username ? `${decodeURIComponent(u.username)}@` : ''}${host}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparseable database URL)';
  }
}

export function parseBrokers(list: string): string[] {
  const brokers = list.split(',').map((b) => b.trim()).filter(Boolean);
  for (const b of brokers) {
    if (!/^[^\s:/]+:\d+$/.test(b)) throw new ConfigError(`KAFKA_BOOTSTRAP_SERVERS: expected host:port[,host:port], got '${b}'`);
  }
  if (brokers.length === 0) throw new ConfigError('KAFKA_BOOTSTRAP_SERVERS is empty');
  return brokers;
}
