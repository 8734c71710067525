// Builds the COPY text of a batch for one table (pure), and sends it into the staging table.
import { createHash } from 'crypto';
import type { PoolClient, Client, Connection, Submittable } from 'pg';
import type { Column } from './columns';
import { copyField, microsToIso, textArrayLiteral, valueToText } from './copy-format';
import type { ChangeEvent } from './decode';
import { UnrepresentableValueError } from './errors';
import { factTable } from './ddl';
import { STAGE_UNAVAILABLE, stageTable } from './merge';
import { ident } from './sql';

export interface StagedEvent {
  event: ChangeEvent;
  topic: string;
  partition: number;
  offset: bigint;
  /** The raw Kafka key and value, kept for a reject. */
  key?: Buffer | null;
  value?: Buffer | null;
  /** Reaches `<table>_latest` with its transaction, through the watermark (merge.ts STAGE_DEFERRED). */
  deferred?: boolean;
}

/** An event of the batch that cannot be staged, and why (it is left out of the COPY text). */
export interface StageReject {
  staged: StagedEvent;
  reason: string;
}

/** Debezium's default `unavailable.value.placeholder` for unchanged TOASTed values. */
export const DEFAULT_PLACEHOLDER = '__debezium_unavailable_value';

/**
 * Every shape Debezium gives its placeholder (UnchangedToastedPlaceholder, 3.6): the text, its
 * bytes (bytea), a one-element list of either (text[], bytea[]), its bytes as numbers (int[],
 * bigint[]), a one-element list of the UUID named by its bytes (uuid[]), and a map of it to
 * itself (hstore, as a map or as JSON text).
 */
export function placeholderMatcher(placeholder: string): (v: unknown) => boolean {
  const bytes = Buffer.from(placeholder);
  const uuid = nameUuid(bytes);
  const hstoreJson = JSON.stringify({ [placeholder]: placeholder });
  const sameBytes = (list: unknown[]) => list.length === bytes.length && list.every((b, i) => (typeof b === 'bigint' || typeof b === 'number') && Number(b) === bytes[i]);
  return (v) => {
    if (typeof v === 'string') return v === placeholder || v === hstoreJson;
    if (Buffer.isBuffer(v)) return v.equals(bytes);
    if (Array.isArray(v)) {
      if (v.length === 1) return v[0] === placeholder || v[0] === uuid || (Buffer.isBuffer(v[0]) && v[0].equals(bytes));
      return sameBytes(v);
    }
    if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      return entries.length === 1 && entries[0][0] === placeholder && entries[0][1] === placeholder;
    }
    return false;
  };
}

/** java.util.UUID.nameUUIDFromBytes: an MD5 name-based (version 3) UUID. */
function nameUuid(bytes: Buffer): string {
  const h = createHash('md5').update(bytes).digest();
  h[6] = (h[6] & 0x0f) | 0x30;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * COPY text for the staging table, columns in the order given, then the pipeline columns.
 * A placeholder takes the value of an earlier event of the same key in this batch; with none,
 * it is staged as null and named in the stage's unavailable column, for the merge to fill from
 * the warehouse. An event with a value its column cannot hold is left out, as a reject.
 */
export function stageText(events: StagedEvent[], columns: string[], placeholder = DEFAULT_PLACEHOLDER): { text: string; unavailable: string[]; rejected: StageReject[] } {
  const isPlaceholder = placeholderMatcher(placeholder);
  const kindCache = new Map<string, Array<Column | null>>();
  const known = new Map<string, Array<string | null | undefined>>();
  const unavailable = new Set<string>();
  const rejected: StageReject[] = [];
  const lines: string[] = [];

  events.forEach((staged, seq) => {
    const { event, topic, partition, offset } = staged;
    let kinds = kindCache.get(event.schemaKey);
    if (!kinds) {
      const byName = new Map(event.model.columns.map((c) => [c.name, c]));
      kinds = columns.map((c) => byName.get(c) ?? null);
      kindCache.set(event.schemaKey, kinds);
    }
    const previous = known.get(event.keyText);
    const texts: Array<string | null> = new Array(columns.length);
    const missing: string[] = [];
    for (let i = 0; i < columns.length; i++) {
      const column = kinds[i];
      const v = column === null ? null : event.row[columns[i]];
      if (v === null || v === undefined) {
        texts[i] = null;
      } else if (isPlaceholder(v)) {
        const earlier = previous?.[i];
        texts[i] = earlier ?? null;
        if (earlier === undefined) missing.push(columns[i]);
      } else {
        try {
          texts[i] = valueToText(column!.kind, v, column!.items);
        } catch (err) {
          rejected.push({ staged, reason: UnrepresentableValueError.inColumn(err, columns[i]).message });
          return; // the event is not staged, and later events of its key do not build on it
        }
      }
    }
    if (event.op === 'd') {
      known.delete(event.keyText);
    } else {
      const mine = previous ?? new Array(columns.length);
      for (let i = 0; i < columns.length; i++) mine[i] = missing.includes(columns[i]) ? undefined : texts[i];
      known.set(event.keyText, mine);
    }
    for (const c of missing) unavailable.add(c);
    const fields: string[] = texts.map(copyField);
    fields.push(
      event.op,
      microsToIso(event.sourceTsMicros),
      event.lsn === null ? '\\N' : event.lsn.toString(),
      event.txId === null ? '\\N' : event.txId.toString(),
      copyField(topic),
      String(partition),
      offset.toString(),
      String(seq),
      missing.length ? copyField(textArrayLiteral(missing)) : '\\N',
      staged.deferred ? 't' : 'f',
    );
    lines.push(fields.join('\t'));
  });
  return { text: lines.length ? `${lines.join('\n')}\n` : '', unavailable: [...unavailable], rejected };
}

/**
 * Removes from the stage the events with an unchanged-TOAST placeholder that neither the batch
 * nor the key's history can resolve (say the key's insert was rejected): staged as they are, the
 * column would silently become null. Returns their Kafka coordinates and columns, to reject.
 */
export function unresolvedSql(table: string, keys: string[]): string {
  const match = keys.map((k) => `h.${ident(k)} = s.${ident(k)}`).join(' AND ');
  return `DELETE FROM pg_temp.${ident(stageTable(table))} AS s WHERE s.${ident(STAGE_UNAVAILABLE)} IS NOT NULL ` +
    `AND NOT EXISTS (SELECT 1 FROM ${ident(factTable(table))} AS h WHERE ${match} AND h.source_lsn < s.source_lsn AND h.op <> 'd') ` +
    `RETURNING s.kafka_topic AS topic, s.kafka_partition AS partition, s.kafka_offset::text AS offset, s.${ident(STAGE_UNAVAILABLE)} AS columns`;
}

export function unresolvedReason(columns: string[]): string {
  return `unchanged TOASTed value of ${columns.join(', ')} (Debezium sent its placeholder) and no earlier value of this key, neither in the batch nor in the warehouse: it would be lost`;
}

/** Sends COPY text into the server; resolves when the server has accepted all of it. */
export function copyIn(client: PoolClient | Client, sql: string, text: string): Promise<void> {
  const copy = new CopyAtOnce(sql, Buffer.from(text, 'utf8'));
  client.query(copy);
  return copy.done;
}

// Protocol message types (frontend): CopyData and CopyDone.
const COPY_DATA = 0x64;
const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]);

/**
 * COPY ... FROM STDIN with its data sent behind the statement, in one write: one round trip to
 * the server instead of two (pg-copy-streams waits for the server's CopyInResponse before it
 * sends any data), and one socket write instead of several. A server that fails the COPY
 * statement itself ignores the CopyData and CopyDone that follow (PostgreSQL's protocol: "accept
 * but ignore" outside copy mode); one that fails a row discards the rest up to CopyDone. Either
 * way the error comes back, then ReadyForQuery, and the session takes the next query.
 */
class CopyAtOnce implements Submittable {
  readonly done: Promise<void>;
  /** Set by pg when the query has a timeout (query_timeout): called when the query ends. */
  callback?: (err?: Error) => void;
  private settled = false;
  private resolve!: () => void;
  private reject!: (err: Error) => void;

  constructor(private readonly sql: string, private readonly data: Buffer) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** pg takes a returned error as the query's failure (and moves on to the next query). */
  submit(connection: Connection): Error | undefined {
    const socket = connection.stream as unknown as { cork(): void; uncork(): void; write(b: Buffer): boolean };
    const header = Buffer.alloc(5);
    header[0] = COPY_DATA;
    header.writeUInt32BE(this.data.length + 4, 1);
    socket.cork();
    try {
      connection.query(this.sql);
      if (this.data.length) {
        socket.write(header);
        socket.write(this.data);
      }
      socket.write(COPY_DONE);
    } catch (err) {
      return err as Error;
    } finally {
      socket.uncork();
    }
    return undefined;
  }

  private settle(err?: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.callback?.(err);
    if (err) this.reject(err);
    else this.resolve();
  }

  // pg calls these by name as the server answers.
  handleCopyInResponse(): void {}
  handleCommandComplete(): void {}
  handleReadyForQuery(): void {
    this.settle();
  }
  /** pg forgets the query at an error (no ReadyForQuery call follows); the session itself waits
   *  for the server's ReadyForQuery before it sends the next query. */
  handleError(err: Error): void {
    this.settle(err);
  }
  // Not a COPY FROM STDIN after all (rows or nothing came back): fail rather than throw inside pg.
  handleRowDescription(): void {
    this.settle(new Error(`not a COPY FROM STDIN: ${this.sql.slice(0, 80)}`));
  }
  handleDataRow(): void {}
  handleEmptyQuery(): void {
    this.handleRowDescription();
  }
  handleCopyData(): void {
    this.handleRowDescription();
  }
}
