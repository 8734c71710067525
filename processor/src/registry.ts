// Schemas by id from the registry (Apicurio's Confluent-compatible API), each fetched once.
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type * as avro from 'avsc';
import { avroOptions } from './avro';

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

/** The registry answered that it has no such schema: the message can never be decoded. */
export class UnknownSchemaError extends Error {}

export class RegistrySchemas implements SchemaSource {
  private readonly client: SchemaRegistry;
  private readonly cache = new Map<number, Promise<WriterSchema>>();

  constructor(private readonly baseUrl: string) {
    this.client = new SchemaRegistry({ host: baseUrl }, { [SchemaType.AVRO]: avroOptions });
  }

  get(id: number): Promise<WriterSchema> {
    let entry = this.cache.get(id);
    if (!entry) {
      entry = this.load(id);
      this.cache.set(id, entry);
      // A failed look-up (registry down) must be retried later, not remembered.
      entry.catch(() => this.cache.delete(id));
    }
    return entry;
  }

  private async load(id: number): Promise<WriterSchema> {
    try {
      const type = (await this.client.getSchema(id)) as unknown as avro.Type;
      const res = await fetch(`${this.baseUrl}/schemas/ids/${id}`);
      if (!res.ok) throw new Error(`schema registry: GET /schemas/ids/${id} answered ${res.status}`);
      const body = (await res.json()) as { schema: string };
      return { id, type, raw: JSON.parse(body.schema) };
    } catch (err: any) {
      if (err?.status === 404) throw new UnknownSchemaError(`schema id ${id} is not in the registry`);
      throw err;
    }
  }

  /** Subjects the registry knows, e.g. to tell at start that a topic has values but no keys. */
  async subjects(): Promise<string[]> {
    const res = await fetch(`${this.baseUrl}/subjects`);
    if (!res.ok) throw new Error(`schema registry: GET /subjects answered ${res.status}`);
    return (await res.json()) as string[];
  }
}
