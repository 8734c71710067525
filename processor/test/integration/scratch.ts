// The integration tier: the processor's writer, merge and DDL against a real PostgreSQL — the
// stack's warehouse cluster (started by `make up`), in a scratch database of the test's own that
// is migrated like the warehouse and dropped afterwards, so the user's warehouse never sees it.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Client, Pool, types } from 'pg';
import { WarehouseWriter, type BatchItem, type WriterOptions } from '../../src/writer';
import type { Decoded } from '../../src/decode';
import { createLogger, type Logger } from '../../src/log';
import type { Rules } from '../../src/validate';

// Exactness: bigint (20) and numeric (1700) come back as strings, never JS numbers.
types.setTypeParser(20, (v) => v);
types.setTypeParser(1700, (v) => v);

const REPO = path.resolve(__dirname, '../../..');

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the integration tier through infra/with-env.sh after make up (make test does)`);
  return v;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export interface Scratch {
  name: string;
  /** Superuser on the scratch database (inspection, setup). */
  admin: Pool;
  /** The processor role's URL on the scratch database (what the writer uses). */
  processorUrl: string;
  /** A writer as the processor runs it, on the scratch database; closed by drop(). */
  writer(opts?: { group?: string; rules?: Rules; placeholder?: string; log?: Logger; options?: WriterOptions }): WarehouseWriter;
  drop(): Promise<void>;
}

/** For a test file: a scratch warehouse and one session of the processor role on it, opened
 *  before its tests and closed after them (read `wh` and `client` inside the tests). */
export function useScratchSession(): { readonly wh: Scratch; readonly client: Client } {
  const s = {} as { wh: Scratch; client: Client };
  beforeAll(async () => {
    s.wh = await scratchWarehouse();
    s.client = new Client({ connectionString: s.wh.processorUrl });
    await s.client.connect();
  });
  afterAll(async () => {
    await s.client?.end();
    await s.wh?.drop();
  });
  return s;
}

/** A fresh warehouse database with the migrations applied. */
export async function scratchWarehouse(): Promise<Scratch> {
  const adminUrl = required('WAREHOUSE_ADMIN_URL');
  const processorUrl = required('WAREHOUSE_DATABASE_URL');
  const name = `cdc_it_${crypto.randomBytes(5).toString('hex')}`;
  const root = new Client({ connectionString: withDatabase(adminUrl, 'postgres') });
  await root.connect();
  try {
    await root.query(`CREATE DATABASE ${name}`);
    await root.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${name} FROM PUBLIC`);
    await root.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${name} TO processor, analyst`);
  } finally {
    await root.end();
  }
  const admin = new Pool({ connectionString: withDatabase(adminUrl, name), max: 3, options: '-c TimeZone=UTC' });
  const dir = path.join(REPO, 'warehouse-migrations');
  for (const f of fs.readdirSync(dir).filter((n) => /^\d+_.*\.sql$/.test(n)).sort()) {
    await admin.query(fs.readFileSync(path.join(dir, f), 'utf8'));
  }
  const writers: WarehouseWriter[] = [];
  const url = withDatabase(processorUrl, name);
  return {
    name,
    admin,
    processorUrl: url,
    writer(opts = {}) {
      const w = new WarehouseWriter(url, opts.group ?? 'it', opts.rules ?? {}, opts.placeholder ?? '__debezium_unavailable_value', opts.log ?? quietLog(), opts.options);
      writers.push(w);
      return w;
    },
    async drop() {
      await Promise.all(writers.map((w) => w.close().catch(() => undefined)));
      await admin.end();
      const c = new Client({ connectionString: withDatabase(adminUrl, 'postgres') });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A logger that keeps what it was told (tests may look), printing nothing. */
export function quietLog(): Logger & { lines: Array<{ level: string; message: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => { lines.push({ level, message, fields }); };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as any;
}

/** A BatchItem around an already decoded event (the Kafka coordinates are the test's). */
export function item(topic: string, partition: number, offset: bigint, decoded: Decoded, key: Buffer | null = null, value: Buffer | null = null): BatchItem {
  return { topic, partition, offset, key, value, decoded };
}

export { createLogger };
