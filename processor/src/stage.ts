// Builds the COPY text of a batch for one table (pure), and streams it into the staging table.
import type { PoolClient, Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ValueKind } from './columns';
import { copyField, microsToIso, textArrayLiteral, valueToText } from './copy-format';
import type { ChangeEvent } from './decode';

export interface StagedEvent {
  event: ChangeEvent;
  topic: string;
  partition: number;
  offset: bigint;
}

/** Debezium's default `unavailable.value.placeholder` for unchanged TOASTed values. */
export const DEFAULT_PLACEHOLDER = '__debezium_unavailable_value';

function isPlaceholder(v: unknown, placeholder: string, placeholderBytes: Buffer): boolean {
  return v === placeholder || (Buffer.isBuffer(v) && v.equals(placeholderBytes));
}

/**
 * COPY text for the staging table, columns in the order given, then the pipeline columns.
 * A placeholder takes the value of an earlier event of the same key in this batch; with none,
 * it is staged as null and named in `_unavailable`, for the merge to fill from the warehouse.
 */
export function stageText(events: StagedEvent[], columns: string[], placeholder = DEFAULT_PLACEHOLDER): { text: string; unavailable: string[] } {
  const placeholderBytes = Buffer.from(placeholder);
  const kindCache = new Map<string, Array<ValueKind | null>>();
  const known = new Map<string, Array<string | null | undefined>>();
  const unavailable = new Set<string>();
  const lines: string[] = [];

  events.forEach(({ event, topic, partition, offset }, seq) => {
    let kinds = kindCache.get(event.schemaKey);
    if (!kinds) {
      const byName = new Map(event.model.columns.map((c) => [c.name, c.kind]));
      kinds = columns.map((c) => byName.get(c) ?? null);
      kindCache.set(event.schemaKey, kinds);
    }
    let previous = known.get(event.keyText);
    const fields: string[] = new Array(columns.length + 9);
    const missing: string[] = [];
    for (let i = 0; i < columns.length; i++) {
      const kind = kinds[i];
      const v = kind === null ? null : event.row[columns[i]];
      let text: string | null;
      if (v === null || v === undefined) {
        text = null;
      } else if (isPlaceholder(v, placeholder, placeholderBytes)) {
        const earlier = previous?.[i];
        if (earlier !== undefined) {
          text = earlier;
        } else {
          text = null;
          missing.push(columns[i]);
          unavailable.add(columns[i]);
        }
      } else {
        text = valueToText(kind!, v);
      }
      fields[i] = copyField(text);
      if (event.op !== 'd') {
        if (!previous) known.set(event.keyText, (previous = new Array(columns.length)));
        previous[i] = missing.includes(columns[i]) ? undefined : text;
      }
    }
    if (event.op === 'd') known.delete(event.keyText);
    let i = columns.length;
    fields[i++] = event.op;
    fields[i++] = microsToIso(event.sourceTsMicros);
    fields[i++] = event.lsn === null ? '\\N' : event.lsn.toString();
    fields[i++] = event.txId === null ? '\\N' : event.txId.toString();
    fields[i++] = copyField(topic);
    fields[i++] = String(partition);
    fields[i++] = offset.toString();
    fields[i++] = String(seq);
    fields[i++] = missing.length ? copyField(textArrayLiteral(missing)) : '\\N';
    lines.push(fields.join('\t'));
  });
  return { text: lines.length ? `${lines.join('\n')}\n` : '', unavailable: [...unavailable] };
}

/** Streams COPY text into the server; resolves when the server has accepted all of it. */
export function copyIn(client: PoolClient | Client, sql: string, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(sql));
    stream.on('error', reject);
    stream.on('finish', () => resolve());
    stream.end(text);
  });
}
