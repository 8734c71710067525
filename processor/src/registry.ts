// Schemas by id from the registry (Apicurio's Confluent-compatible API), each fetched once.
//
// One GET /schemas/ids/{id} per id, made here rather than through @kafkajs/confluent-schema-registry:
// that client reports a refused connection or a timeout with status 400, which cannot be told from
// a real answer, and a message rejected because the registry was away is a good row lost. So the
// rule is strict: only a reachable registry saying "no schema with this id" (404, error code 40403)
// rejects; anything else is RegistryUnavailableError, which the pipeline waits out and retries.
import type * as avro from 'avsc';
import { avroType } from './avro';
import { RegistryRefusedError, RegistryUnavailableError, UnknownSchemaError, UnsupportedSchemaError } from './errors';
import { authHeaders, type BasicCredentials } from './rest-auth';

export { UnknownSchemaError } from './errors';

export interface WriterSchema {
  id: number;
  /** avsc type that decodes the payload (exact longs and decimals). */
  type: avro.Type;
  /** The schema as registered, with Debezium's `connect.*` attributes that avsc drops. */
  raw: any;
}

export interface SchemaSource {
  get(id: number): Promise<WriterSchema>;
}

export interface RegistryOptions {
  /** Bound on one request; a registry that hangs is as unavailable as one that refuses. */
  timeoutMs?: number;
  /** HTTP basic credentials, for a registry that asks for them (SECURITY=on). */
  auth?: BasicCredentials | null;
}

/** The Confluent API's error code for "schema not found" (Apicurio's ccompat API uses it too). */
const SCHEMA_NOT_FOUND = 40403;

export class RegistrySchemas implements SchemaSource {
  private readonly cache = new Map<number, Promise<WriterSchema>>();
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(
    private readonly baseUrl: string,
    opts: RegistryOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.headers = { Accept: 'application/vnd.schemaregistry.v1+json, application/json', ...authHeaders(opts.auth) };
    this.user = opts.auth?.username ?? null;
  }

  private readonly user: string | null;

  get(id: number): Promise<WriterSchema> {
    let entry = this.cache.get(id);
    if (!entry) {
      entry = this.load(id);
      this.cache.set(id, entry);
      // A failed look-up must be asked again later, not remembered.
      entry.catch(() => this.cache.delete(id));
    }
    return entry;
  }

  private async load(id: number): Promise<WriterSchema> {
    const path = `/schemas/ids/${id}`;
    const { status, text } = await this.request(path);
    if (status === 404 && errorCode(text) === SCHEMA_NOT_FOUND) {
      throw new UnknownSchemaError(`schema id ${id} is not in the registry`);
    }
    if (status !== 200) throw new RegistryUnavailableError(`schema registry: GET ${path} answered ${status}${snippet(text)}`);
    let raw: unknown;
    try {
      const body = JSON.parse(text);
      if (typeof body?.schema !== 'string') throw new Error('no "schema" string in the reply');
      if (body.schemaType !== undefined && body.schemaType !== 'AVRO') {
        throw new UnsupportedSchemaError(`schema id ${id} is of type ${body.schemaType}; only Avro is decoded`);
      }
      raw = JSON.parse(body.schema);
    } catch (err) {
      if (err instanceof UnsupportedSchemaError) throw err;
      // A reply cut short or from something that is not the registry (a proxy's page): ask again.
      throw new RegistryUnavailableError(`schema registry: GET ${path} gave an unreadable reply (${(err as Error).message})${snippet(text)}`, { cause: err });
    }
    try {
      // The same options the library built types with (avro.ts): exact longs, exact decimals.
      return { id, type: avroType(raw), raw };
    } catch (err) {
      throw new UnsupportedSchemaError(`schema id ${id} is not a usable Avro schema: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Subjects the registry knows, e.g. to tell at start that a topic has values but no keys. */
  async subjects(): Promise<string[]> {
    const { status, text } = await this.request('/subjects');
    if (status !== 200) throw new RegistryUnavailableError(`schema registry: GET /subjects answered ${status}${snippet(text)}`);
    try {
      return JSON.parse(text) as string[];
    } catch (err) {
      throw new RegistryUnavailableError(`schema registry: GET /subjects gave an unreadable reply${snippet(text)}`, { cause: err });
    }
  }

  /** One bounded GET; a network failure or timeout becomes RegistryUnavailableError. */
  private async request(path: string): Promise<{ status: number; text: string }> {
    try {
      const res = await fetch(`${this.baseUrl}${path}`, {
        headers: this.headers,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      // The body is read under the same timeout: a reply that stalls halfway is a hang too.
      const text = await res.text();
      if (res.status === 401 || res.status === 403) {
        throw new RegistryRefusedError(`schema registry: GET ${path} answered ${res.status}: ${this.user ? `user ${this.user} refused` : 'credentials needed'} (registry.username / registry.password: SCHEMA_REGISTRY_USERNAME, SCHEMA_REGISTRY_PASSWORD)`);
      }
      return { status: res.status, text };
    } catch (err) {
      if (err instanceof RegistryRefusedError) throw err;
      const e = err as any;
      const why = e?.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : `${e?.message ?? e}${e?.cause?.message ? `: ${e.cause.message}` : ''}`;
      throw new RegistryUnavailableError(`schema registry: GET ${path} failed: ${why}`, { cause: err });
    }
  }
}

function errorCode(text: string): unknown {
  try {
    return JSON.parse(text)?.error_code;
  } catch {
    return undefined;
  }
}

function snippet(text: string): string {
  const t = text.trim();
  return t ? ` (${t.length > 200 ? `${t.slice(0, 200)}…` : t})` : '';
}
