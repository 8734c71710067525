// Events that cannot be loaded go to cdc.rejected_events with their reason and raw bytes,
// in the same transaction that moves the offsets past them.
import type { ClientBase } from 'pg';

export interface Reject {
  topic: string;
  partition: number;
  offset: bigint;
  table: string;
  stage: 'decode' | 'schema' | 'validate' | 'load';
  reason: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Decoded payload as JSON text, when it could be decoded. */
  payload: string | null;
}

export async function insertRejects(client: ClientBase, rejects: Reject[]): Promise<void> {
  if (rejects.length === 0) return;
  const col = <T>(f: (r: Reject) => T) => rejects.map(f);
  await client.query(
    `INSERT INTO cdc.rejected_events (topic, partition, "offset", source_table, stage, reason, key_raw, value_raw, payload)
     SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::jsonb[])
     ON CONFLICT (topic, partition, "offset") DO NOTHING`,
    [
      col((r) => r.topic),
      col((r) => r.partition),
      col((r) => r.offset.toString()),
      col((r) => r.table),
      col((r) => r.stage),
      col((r) => r.reason),
      col((r) => r.key),
      col((r) => r.value),
      col((r) => r.payload),
    ],
  );
}
