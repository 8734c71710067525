// Writes one micro-batch in ONE warehouse transaction: lock offsets, drop what was already
// written, create/evolve tables, COPY into staging, append history, merge current rows,
// record rejects, move offsets, commit. A crash anywhere before COMMIT leaves no trace.
import { Client } from 'pg';
import type { ChangeEvent, Decoded } from './decode';
import { dataColumns, factTable, latestTable, planDdl } from './ddl';
import { parseTimeTravelState, timeTravelCatalogSql, type TimeTravelState } from './history';
import { copySql, createStageSql, mergeSql, placeReadsSql } from './merge';
import { lockOffsets, saveOffsets, tpKey, type TopicPartition } from './offsets';
import { insertRejects, type Reject } from './rejects';
import { copyIn, stageText, type StagedEvent } from './stage';
import { toJson } from './copy-format';
import { validate, type Rules } from './validate';
import type { Logger } from './log';

export interface BatchItem {
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  decoded: Decoded;
}

export interface TableResult {
  written: number;
  duplicates: number;
  /** Source commit times (µs) of the events written, for the freshness histogram. */
  sourceTs: bigint[];
}

export interface BatchResult {
  tables: Map<string, TableResult>;
  rejects: Reject[];
  /** Events already stored (offset below the warehouse's position): another writer had them. */
  alreadyStored: number;
  /** Next offset per partition, as committed. */
  offsets: Map<string, { tp: TopicPartition; offset: bigint }>;
  /** Milliseconds spent per step of the transaction (debug logs show where a batch's time goes). */
  phases: Record<string, number>;
}

interface Catalog {
  fact: Map<string, string>;
  latest: Map<string, string>;
  /** What is installed of `<table>_history`, `<table>_as_of` and their index. */
  timeTravel: TimeTravelState;
}

export class WarehouseWriter {
  private client: Client | null = null;
  /** Per table model (schemaKey): the conflicts found when its DDL was planned ([] = fits). */
  private readonly planned = new Map<string, string[]>();
  private readonly catalogs = new Map<string, Catalog>();
  /** Per table: the column signature its session staging table was created with. */
  private readonly staging = new Map<string, string>();

  constructor(
    private readonly url: string,
    private readonly group: string,
    private readonly rules: Rules,
    private readonly placeholder: string,
    private readonly log: Logger,
  ) {}

  async write(items: BatchItem[]): Promise<BatchResult> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      const result = await this.writeInTransaction(client, items);
      const t = performance.now();
      await client.query('COMMIT');
      result.phases.commit = performance.now() - t;
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // DDL and staging tables of the failed transaction are gone with it.
      this.forgetState();
      throw err;
    }
  }

  private async writeInTransaction(client: Client, items: BatchItem[]): Promise<BatchResult> {
    const tps = new Map<string, TopicPartition>();
    for (const i of items) tps.set(tpKey(i.topic, i.partition), { topic: i.topic, partition: i.partition });
    const phases: Record<string, number> = {};
    let t = performance.now();
    const lap = (phase: string) => {
      const now = performance.now();
      phases[phase] = (phases[phase] ?? 0) + now - t;
      t = now;
    };
    const stored = await lockOffsets(client, this.group, [...tps.values()]);
    lap('lock');

    const result: BatchResult = { tables: new Map(), rejects: [], alreadyStored: 0, offsets: new Map(), phases };
    const byTable = new Map<string, StagedEvent[]>();
    const seen = new Set<string>();
    for (const item of items) {
      const key = tpKey(item.topic, item.partition);
      if (item.offset < (stored.get(key) ?? 0n)) {
        result.alreadyStored++;
        continue;
      }
      const next = result.offsets.get(key);
      if (!next || next.offset <= item.offset) result.offsets.set(key, { tp: tps.get(key)!, offset: item.offset + 1n });

      const d = item.decoded;
      if (d.kind === 'skip') continue;
      if (d.kind === 'reject') {
        result.rejects.push(this.reject(item, d.table, d.stage, d.reason, d.payload === undefined ? null : toJson(d.payload)));
        continue;
      }
      const event = d.event;
      const invalid = validate(event, this.rules);
      if (invalid) {
        result.rejects.push(this.reject(item, event.table, 'validate', invalid, eventJson(event)));
        continue;
      }
      const conflicts = await this.ensureTables(client, event);
      if (conflicts.length) {
        result.rejects.push(this.reject(item, event.table, 'schema', conflicts.join('; '), eventJson(event)));
        continue;
      }
      // The same change twice in one batch (Debezium re-sent it): stage it once.
      const identity = `${event.table}\u0000${event.lsn ?? `@${item.partition}/${item.offset}`}\u0000${event.op}\u0000${event.keyText}`;
      let staged = byTable.get(event.table);
      if (!staged) byTable.set(event.table, (staged = []));
      if (seen.has(identity)) {
        tableResult(result, event.table).duplicates++;
        continue;
      }
      seen.add(identity);
      staged.push({ event, topic: item.topic, partition: item.partition, offset: item.offset });
    }

    lap('prepare');
    for (const [table, events] of byTable) {
      if (events.length) await this.loadTable(client, table, events, tableResult(result, table), lap);
    }
    await insertRejects(client, result.rejects);
    await saveOffsets(client, this.group, result.offsets);
    lap('offsets');
    return result;
  }

  private async loadTable(client: Client, table: string, events: StagedEvent[], out: TableResult, lap: (phase: string) => void): Promise<void> {
    const catalog = this.catalogs.get(table)!;
    const columns = dataColumns(catalog.fact);
    const signature = columns.map((c) => `${c} ${catalog.fact.get(c)}`).join(',');
    if (this.staging.get(table) !== signature) {
      for (const sql of createStageSql(table, columns.map((c) => [c, catalog.fact.get(c)!]))) await client.query(sql);
      this.staging.set(table, signature);
    }
    const { text, unavailable } = stageText(events, columns, this.placeholder);
    lap('stage');
    await copyIn(client, copySql(table, columns), text);
    lap('copy');
    const keys = events[0].event.model.keyColumns;
    const sql = mergeSql(table, columns, keys, unavailable);
    if (events.some((e) => e.event.lsn === null)) await client.query(placeReadsSql(table, keys));
    for (const fill of sql.fill) await client.query(fill);
    const resent = (await client.query(sql.appendFact)).rowCount ?? 0;
    lap('append');
    await client.query(sql.mergeLatest);
    lap('merge');
    out.written += events.length - resent;
    out.duplicates += resent;
    if (resent === 0) {
      for (const e of events) out.sourceTs.push(e.event.sourceTsMicros);
    }
  }

  /** Creates or evolves the table's warehouse tables for this event's schema, once per schema. */
  private async ensureTables(client: Client, event: ChangeEvent): Promise<string[]> {
    const known = this.planned.get(event.schemaKey);
    if (known) return known;
    const table = event.table;
    let catalog = this.catalogs.get(table) ?? (await readCatalog(client, table));
    const plan = planDdl(event.model, catalog.fact.size ? catalog.fact : null, catalog.latest.size ? catalog.latest : null, catalog.timeTravel);
    if (plan.statements.length) {
      for (const sql of plan.statements) await client.query(sql);
      catalog = await readCatalog(client, table);
      this.log.info('warehouse tables changed to fit the schema', { table, statements: plan.statements });
    }
    for (const notice of plan.notices) this.log.warn(notice, { table });
    if (plan.conflicts.length) this.log.error('incompatible schema change: events of this schema go to cdc.rejected_events', { table, conflicts: plan.conflicts });
    this.catalogs.set(table, catalog);
    this.planned.set(event.schemaKey, plan.conflicts);
    return plan.conflicts;
  }

  private reject(item: BatchItem, table: string, stage: Reject['stage'], reason: string, payload: string | null): Reject {
    return { topic: item.topic, partition: item.partition, offset: item.offset, table, stage, reason, key: item.key, value: item.value, payload };
  }

  private forgetState(): void {
    this.planned.clear();
    this.catalogs.clear();
    this.staging.clear();
  }

  private async connect(): Promise<Client> {
    if (this.client) return this.client;
    const client = new Client({ connectionString: this.url, application_name: 'cdc-processor' });
    client.on('error', (err) => {
      this.log.warn('warehouse connection lost', { error: err });
      if (this.client === client) this.client = null;
      this.forgetState();
    });
    // The time-travel DDL degrades to a WARNING rather than failing the batch: show it.
    client.on('notice', (n) => {
      if (n.severity === 'WARNING') this.log.warn(`warehouse: ${n.message}`);
    });
    await client.connect();
    // Instants travel as UTC text; the session zone only matters for anything printed back.
    await client.query("SET TIME ZONE 'UTC'");
    // Rows and offsets commit together, so a commit the server loses in a crash is lost whole
    // and simply read again from Kafka: no need to wait for the WAL flush of every batch.
    await client.query('SET synchronous_commit = off');
    this.client = client;
    this.forgetState();
    return client;
  }

  /** Drops the connection (after a failed batch the session may be unusable). */
  async reset(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.forgetState();
    await c?.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.reset();
  }
}

function tableResult(result: BatchResult, table: string): TableResult {
  let t = result.tables.get(table);
  if (!t) result.tables.set(table, (t = { written: 0, duplicates: 0, sourceTs: [] }));
  return t;
}

function eventJson(event: ChangeEvent): string {
  return toJson({ op: event.op, row: event.row, source_lsn: event.lsn, source_ts_us: event.sourceTsMicros });
}

/** Columns of `<table>_fact` and `<table>_latest` as the catalog has them (empty map: no table),
 *  and the installed state of the table's time-travel objects. */
export async function readCatalog(client: Client, table: string): Promise<Catalog> {
  const columnsOf = async (name: string): Promise<Map<string, string>> => {
    const res = await client.query(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a
       WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY a.attnum`,
      [`public."${name.replace(/"/g, '""')}"`],
    );
    return new Map(res.rows.map((r) => [r.name, r.type]));
  };
  const tt = timeTravelCatalogSql(table);
  const timeTravel = parseTimeTravelState((await client.query(tt.text, tt.values)).rows[0]);
  return { fact: await columnsOf(factTable(table)), latest: await columnsOf(latestTable(table)), timeTravel };
}

