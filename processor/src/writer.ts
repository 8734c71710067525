// Writes one micro-batch in ONE warehouse transaction: lock offsets, drop what was already
// written, create/evolve tables, COPY into staging, append history, merge current rows (only
// those outside a source transaction when it is loaded whole: the watermark step, consistency.ts,
// merges the rest), count events per source transaction, record rejects, move offsets, commit.
// A crash anywhere before COMMIT leaves no trace.
import { Client, type QueryResult } from 'pg';
import type { ChangeEvent, Decoded, TransactionEnd } from './decode';
import { TransactionCounts, recordTransactionsSql, recordProgressSql } from './transactions';
import { dataColumns, factTable, latestTable, planDdl, truncatesTable } from './ddl';
import { splitTopic } from './topics';
import { parseTimeTravelState, timeTravelCatalogSql, type TimeTravelState } from './history';
import { copySql, createStageSql, fillAddedDefaultsSql, mergeSql, placeReadsSql, stageTable } from './merge';
import { createTruncatesSql, emptyLatestSql, recordTruncateSql, type TruncateEvent } from './truncate';
import { microsToIso } from './copy-format';
import { combineWrites, ident, inlineParams, type Statement } from './sql';
import { findGaps, lockOffsets, saveOffsetsSql, tpKey, type TopicPartition } from './offsets';
import { OffsetGapError } from './errors';
import { insertRejects, type Reject } from './rejects';
import { copyIn, stageText, unresolvedReason, unresolvedSql, type StagedEvent } from './stage';
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
  /** Where the consumer read on from to reach this message: no message of the partition lies
   *  between `from` and `offset` (Kafka offsets skip transaction markers and compacted records).
   *  Unset: `offset` itself, so the batch must start exactly at the stored offset. */
  from?: bigint;
  /** This event alone failed to load with this error: it is stored as a reject (stage 'load'). */
  loadError?: string;
}

export interface TableResult {
  written: number;
  duplicates: number;
  /** Snapshot reads ('r') equal to the row the warehouse has: no new version. */
  unchanged: number;
  /** Source truncates applied. */
  truncates: number;
  /** Source commit times (µs) of the events written, for the freshness histogram. */
  sourceTs: bigint[];
}

export interface BatchResult {
  tables: Map<string, TableResult>;
  rejects: Reject[];
  /** Events already stored (offset below the warehouse's position): another writer had them. */
  alreadyStored: number;
  /** Next offset per partition, as committed, and the highest source LSN of its events. */
  offsets: Map<string, { tp: TopicPartition; offset: bigint; maxLsn: bigint | null }>;
  /** END records of source transactions recorded (transaction metadata). */
  transactionEnds?: number;
  /** Milliseconds spent per step of the transaction (debug logs show where a batch's time goes). */
  phases: Record<string, number>;
}

interface Catalog {
  fact: Map<string, string>;
  latest: Map<string, string>;
  /** What is installed of `<table>_history`, `<table>_as_of` and their index. */
  timeTravel: TimeTravelState;
}

export interface WriterOptions {
  /** Called after the commit of a batch whose schema change leaves current rows the warehouse
   *  cannot fill (a renamed column, a volatile default): the table should be snapshotted again. */
  onResnapshot?: (table: string, reason: string) => void | Promise<void>;
  /** After a refused time-travel replacement, how long before trying again (default 30 s). */
  timeTravelRetryMs?: number;
  /** 'transaction': a change Debezium placed in a source transaction reaches `<table>_latest`
   *  only with its whole transaction, when the consistency watermark passes it (migration 0006);
   *  the batch appends it to the history. 'event': every change merges at once (and a table
   *  loaded the other way before is first brought up to date). Unset: at once, nothing else. */
  applyMode?: 'transaction' | 'event';
  /** Whether this processor records the transaction metadata (`<prefix>.transaction`) of a
   *  source: without it the watermark of that source would never move, so nothing waits for it. */
  readsTransactions?: (prefix: string) => boolean;
}

export class WarehouseWriter {
  private client: Client | null = null;
  /** Per table model (schemaKey): the conflicts found when its DDL was planned ([] = fits). */
  private readonly planned = new Map<string, string[]>();
  private readonly catalogs = new Map<string, Catalog>();
  /** Per table: the column signature its session staging table was created with. */
  private readonly staging = new Map<string, string>();
  /** Called when the connection drops: commits the server had not flushed may be gone with it
   *  (synchronous_commit = off), so what this writer believes was stored must be checked. */
  onConnectionLost: (() => void) | null = null;

  constructor(
    private readonly url: string,
    private readonly group: string,
    private readonly rules: Rules,
    private readonly placeholder: string,
    private readonly log: Logger,
    private readonly options: WriterOptions = {},
  ) {}

  /** Re-snapshot reasons planned in the open transaction: reported once it commits. */
  private resnapshots: Array<{ table: string; reason: string }> = [];
  /** Per table: a time-travel replacement PostgreSQL refused, the state it left, when to retry. */
  private readonly timeTravelRefused = new Map<string, { state: string; retryAt: number }>();
  /** Set when a batch found a change already stored above the stored LSN: the re-send check
   *  runs on every batch of this writer from then on. */
  private checkResends = false;
  /** Tables this session has registered in (or, in event mode, taken out of) cdc.published_tables. */
  private readonly publishing = new Set<string>();
  /** Tables whose schema the open batch met for the first time (ensureTables read their catalog). */
  private readonly ensuredInBatch = new Set<string>();

  async write(items: BatchItem[]): Promise<BatchResult> {
    const client = await this.connect();
    try {
      // BEGIN is sent with the offsets' lock (lockOffsets), COMMIT with the bookkeeping: each
      // one round trip less per batch.
      const result = await this.writeAndCommit(client, items);
      await this.reportResnapshots();
      return result;
    } catch (err) {
      // A session that cannot even roll back is of no further use: the next write reconnects.
      await client.query('ROLLBACK').catch(() => this.reset());
      // DDL and staging tables of the failed transaction are gone with it.
      this.forgetState();
      this.resnapshots = [];
      throw err;
    }
  }

  private async writeAndCommit(client: Client, items: BatchItem[]): Promise<BatchResult> {
    const tps = new Map<string, TopicPartition>();
    for (const i of items) tps.set(tpKey(i.topic, i.partition), { topic: i.topic, partition: i.partition });
    const phases: Record<string, number> = {};
    let t = performance.now();
    const lap = (phase: string) => {
      const now = performance.now();
      phases[phase] = (phases[phase] ?? 0) + now - t;
      t = now;
    };
    const maxLsn = new Map<string, bigint | null>();
    // The time-travel objects of the batch's tables are read back with the BEGIN (refreshTimeTravel).
    this.ensuredInBatch.clear();
    const timeTravel = this.timeTravelChecks(items);
    const locked = await lockOffsets(client, this.group, [...tps.values()], maxLsn, { begin: true, reads: timeTravel.map(([table]) => timeTravelCatalogSql(table)) });
    const stored = locked.stored;
    lap('lock');
    this.refuseGaps(items, stored);

    const result: BatchResult = { tables: new Map(), rejects: [], alreadyStored: 0, offsets: new Map(), transactionEnds: 0, phases };
    const ends: Array<{ end: TransactionEnd; partition: number; offset: bigint }> = [];
    // Events written or rejected per source transaction (re-sends are neither): see transactions.ts.
    const counts = new TransactionCounts();
    const byTable = new Map<string, Array<StagedEvent | TruncateEvent>>();
    const seen = new Set<string>();
    for (const item of items) {
      const key = tpKey(item.topic, item.partition);
      if (item.offset < (stored.get(key) ?? 0n)) {
        result.alreadyStored++;
        continue;
      }
      let next = result.offsets.get(key);
      if (!next) {
        next = { tp: tps.get(key)!, offset: item.offset + 1n, maxLsn: null };
        result.offsets.set(key, next);
      }
      if (next.offset <= item.offset) next.offset = item.offset + 1n;
      const lsn = item.decoded.kind === 'event' ? item.decoded.event.lsn : null;
      if (lsn !== null && (next.maxLsn === null || lsn > next.maxLsn)) next.maxLsn = lsn;

      const d = item.decoded;
      if (item.loadError !== undefined) {
        if (d.kind === 'event') counts.add(item.topic, d.event);
        result.rejects.push(this.reject(item, tableOf(d), 'load', item.loadError, loadPayload(d)));
        continue;
      }
      if (d.kind === 'skip') continue;
      if (d.kind === 'transaction') {
        ends.push({ end: d.end, partition: item.partition, offset: item.offset });
        continue;
      }
      if (d.kind === 'truncate') {
        // In the table's order: its events before the truncate load before it, later ones after.
        let list = byTable.get(d.table);
        if (!list) byTable.set(d.table, (list = []));
        list.push({ lsn: d.lsn, sourceTsMicros: d.sourceTsMicros, txId: d.txId, topic: item.topic, partition: item.partition, offset: item.offset });
        continue;
      }
      if (d.kind === 'reject') {
        result.rejects.push(this.reject(item, d.table, d.stage, d.reason, d.payload === undefined ? null : toJson(d.payload)));
        continue;
      }
      const event = d.event;
      const invalid = validate(event, this.rules);
      if (invalid) {
        counts.add(item.topic, event);
        result.rejects.push(this.reject(item, event.table, 'validate', invalid, eventJson(event)));
        continue;
      }
      // Known schemas without an await: a promise per event is a drain's worth of microtasks.
      const conflicts = this.planned.get(event.schemaKey) ?? (await this.ensureTables(client, event));
      if (conflicts.length) {
        counts.add(item.topic, event);
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
      staged.push({ event, topic: item.topic, partition: item.partition, offset: item.offset, key: item.key, value: item.value, deferred: event.inTransaction === true && this.defers(item.topic, event.table) });
    }

    lap('prepare');
    const loaded = new Map<string, ChangeEvent>();
    for (const [table, list] of byTable) {
      let segment: StagedEvent[] = [];
      for (const entry of [...list, null]) {
        if (entry && 'event' in entry) {
          segment.push(entry);
          continue;
        }
        if (segment.length) {
          await this.loadTable(client, table, segment, tableResult(result, table), lap, result.rejects, counts, maxLsn);
          loaded.set(table, segment[segment.length - 1].event);
        }
        if (entry && segment.length) await client.query(`TRUNCATE pg_temp.${ident(stageTable(table))}`);
        segment = [];
        if (entry && (await this.applyTruncate(client, table, entry, tableResult(result, table))) && entry.txId !== null) counts.addXid(entry.topic, entry.txId, entry.sourceTsMicros);
      }
    }
    // Tables whose schema was first met in this batch had their catalog read then: nothing to check.
    for (const [i, [table]] of timeTravel.entries()) {
      const event = loaded.get(table);
      if (event && !this.ensuredInBatch.has(table)) await this.refreshTimeTravel(client, table, event, parseTimeTravelState(locked.reads[i]));
    }
    await insertRejects(client, result.rejects);
    lap('bookkeeping');
    // END records, counts and offsets in one statement, sent with the COMMIT: one round trip.
    const writes: Array<{ name: string } & Statement> = [];
    if (ends.length) writes.push({ name: 'ends', ...recordTransactionsSql(ends) });
    if (counts.size) writes.push({ name: 'progress', ...recordProgressSql(counts) });
    const offsets = saveOffsetsSql(this.group, result.offsets);
    if (offsets) writes.push({ name: 'offsets', ...offsets });
    if (writes.length) {
      const [done] = (await client.query(`${inlineParams(combineWrites(writes))};\nCOMMIT`)) as unknown as QueryResult[];
      if (ends.length) result.transactionEnds = done.rows[0].ends;
    } else {
      await client.query('COMMIT');
    }
    lap('commit');
    return result;
  }

  /** The batch's tables whose time-travel objects are checked (checksTimeTravel), each with its
   *  last change event in the batch. */
  private timeTravelChecks(items: BatchItem[]): Array<[string, ChangeEvent]> {
    const last = new Map<string, ChangeEvent>();
    for (const { decoded: d, loadError } of items) {
      if (loadError === undefined && d.kind === 'event' && this.checksTimeTravel(d.event.table, d.event)) last.set(d.event.table, d.event);
    }
    return [...last];
  }

  private async loadTable(client: Client, table: string, events: StagedEvent[], out: TableResult, lap: (phase: string) => void, rejects: Reject[], counts: TransactionCounts, maxLsn: Map<string, bigint | null>): Promise<void> {
    const catalog = this.catalogs.get(table)!;
    const columns = dataColumns(catalog.fact);
    const signature = columns.map((c) => `${c} ${catalog.fact.get(c)}`).join(',');
    if (this.staging.get(table) !== signature) {
      for (const sql of createStageSql(table, columns.map((c) => [c, catalog.fact.get(c)!]))) await client.query(sql);
      this.staging.set(table, signature);
    }
    const { text, unavailable, rejected } = stageText(events, columns, this.placeholder);
    const dropped = new Set<StagedEvent>();
    const rejectStaged = (e: StagedEvent, reason: string) => {
      dropped.add(e);
      counts.add(e.topic, e.event);
      rejects.push({ topic: e.topic, partition: e.partition, offset: e.offset, table, stage: 'validate', reason, key: e.key ?? null, value: e.value ?? null, payload: eventJson(e.event) });
    };
    for (const r of rejected) rejectStaged(r.staged, r.reason);
    lap('stage');
    await copyIn(client, copySql(table, columns), text);
    lap('copy');
    const keys = events[0].event.model.keyColumns;
    if (unavailable.length) {
      for (const row of (await client.query(unresolvedSql(table, keys))).rows) {
        const e = events.find((x) => x.topic === row.topic && x.partition === row.partition && x.offset === BigInt(row.offset));
        if (e) rejectStaged(e, unresolvedReason(row.columns));
      }
    }
    await this.followApplyMode(client, table, events[0].topic, keys, events.some((e) => e.deferred));
    const deferred = events.every((e) => e.deferred) ? 'all' : events.some((e) => e.deferred);
    const sql = mergeSql(table, columns, keys, unavailable, { types: catalog.fact, snapshotReads: events.some((e) => e.event.op === 'r'), deferred });
    // Incremental snapshot reads carry no LSN: each takes its place in its key's history first.
    if (events.some((e) => e.event.lsn === null)) await client.query(placeReadsSql(table, keys));
    for (const fill of sql.fill) await client.query(fill);
    for (const q of fillAddedDefaultsSql(table, events.map((e) => ({ model: e.event.model, lsn: e.event.lsn })))) await client.query(q.text, q.values);
    const unchanged = sql.dropUnchangedReads ? (await client.query(sql.dropUnchangedReads)).rowCount ?? 0 : 0;
    // A Debezium re-send repeats a change it had sent before, so its LSN is at most the highest
    // this group appended from that partition: a segment entirely above it needs no check.
    const noResends = !this.checkResends && events.every((e) => {
      const max = maxLsn.get(tpKey(e.topic, e.partition));
      return e.event.lsn !== null && max !== null && max !== undefined && e.event.lsn > max;
    });
    let resent = 0;
    if (noResends) {
      const expected = events.length - dropped.size - unchanged;
      const appended = (await client.query(sql.appendFactNew)).rowCount ?? 0;
      if (appended !== expected) {
        // Some change was in the history after all (another group loads the same table?): this
        // batch goes again, with the check.
        this.checkResends = true;
        throw new Error(`${expected - appended} of ${expected} changes of ${table} were already in its history although above the highest LSN stored for their partitions; writing the batch again with the re-send check`);
      }
    } else {
      resent = (await client.query(sql.appendFact)).rowCount ?? 0;
    }
    lap('append');
    // What is left in the stage was appended: those events count for their transactions.
    const inTransaction = events.filter((e) => e.event.inTransaction && !dropped.has(e));
    if (inTransaction.length && noResends) {
      // Every staged event was appended (the count matched): nothing to ask the stage.
      for (const e of inTransaction) counts.add(e.topic, e.event);
    } else if (inTransaction.length) {
      // Debezium places every streamed change in a transaction and no snapshot read: then the
      // stage counts per transaction (a few rows back, not one per event of a large batch).
      if (events.every((e) => dropped.has(e) || e.event.inTransaction === (e.event.op !== 'r'))) {
        const commitTs = new Map<string, bigint>();
        for (const e of inTransaction) commitTs.set(`${e.topic}\u0000${e.event.txId}`, e.event.sourceTsMicros);
        const grouped = await client.query(`SELECT kafka_topic, source_txid::text AS xid, count(*)::int AS n FROM pg_temp.${ident(stageTable(table))} WHERE op <> 'r' GROUP BY 1, 2`);
        for (const r of grouped.rows) counts.addXid(r.kafka_topic, BigInt(r.xid), commitTs.get(`${r.kafka_topic}\u0000${r.xid}`) ?? 0n, r.n);
      } else {
        const appended = new Set((await client.query(`SELECT kafka_partition, kafka_offset FROM pg_temp.${ident(stageTable(table))}`)).rows.map((r) => `${r.kafka_partition}/${r.kafka_offset}`));
        for (const e of inTransaction) if (appended.has(`${e.partition}/${e.offset}`)) counts.add(e.topic, e.event);
      }
    }
    if (sql.mergeLatest) await client.query(sql.mergeLatest);
    lap('merge');
    out.written += events.length - dropped.size - resent - unchanged;
    out.duplicates += resent;
    out.unchanged += unchanged;
    if (resent === 0 && unchanged === 0) {
      for (const e of events) if (!dropped.has(e)) out.sourceTs.push(e.event.sourceTsMicros);
    }
  }

  /** Whether an in-transaction change of `table` read from `topic` waits for the watermark. Not
   *  when the history has no commit-time index (a large table from before time travel, see
   *  history.ts): publishing a range would then read the whole history. */
  private defers(topic: string, table: string): boolean {
    if (this.options.applyMode !== 'transaction') return false;
    const prefix = splitTopic(topic)?.prefix;
    if (prefix === undefined || !this.options.readsTransactions?.(prefix)) return false;
    return this.catalogs.get(table)?.timeTravel.asOfIndex === true;
  }

  /** Registers a table whose changes wait for the watermark (in the batch that first defers one,
   *  so the step never sees those changes without the table), or, in event mode, takes it out
   *  after merging what still waits. Once per table and session. */
  private async followApplyMode(client: Client, table: string, topic: string, keys: string[], deferring: boolean): Promise<void> {
    if (this.publishing.has(table)) return;
    const prefix = splitTopic(topic)?.prefix;
    if (prefix === undefined) return;
    if (deferring) {
      await client.query(
        'INSERT INTO cdc.published_tables (topic_prefix, warehouse_table, fact_table, latest_table, truncates_table, key_columns) VALUES ($1, $2, $3, $4, $5, $6) ' +
        'ON CONFLICT (topic_prefix, warehouse_table) DO UPDATE SET fact_table = EXCLUDED.fact_table, latest_table = EXCLUDED.latest_table, truncates_table = EXCLUDED.truncates_table, key_columns = EXCLUDED.key_columns',
        [prefix, table, factTable(table), latestTable(table), truncatesTable(table), keys]);
    } else if (this.options.applyMode === 'event') {
      await client.query('SELECT cdc.unpublish_table($1, $2)', [prefix, table]);
    } else {
      return;
    }
    this.publishing.add(table);
  }

  /** Refuses the batch when a partition's events would start past the stored offset: a batch
   *  before it was lost (abandoned, or a commit lost in a crash), and committing this one would
   *  make that hole permanent. Events below the stored offset are dropped later (already stored). */
  private refuseGaps(items: BatchItem[], stored: Map<string, bigint>): void {
    const gaps = findGaps(items, stored);
    if (gaps.length) throw new OffsetGapError(gaps);
  }

  /** Serialises DDL on one table across lanes and processes until this transaction ends: two
   *  writers creating the same table at once collide in the catalog (pg_type_typname_nsp_index). */
  private async lockTableDdl(client: Client, table: string): Promise<void> {
    await client.query('SELECT pg_advisory_xact_lock($1::int, hashtext($2))', [DDL_LOCK_SPACE, table]);
  }

  /** Creates or evolves the table's warehouse tables for this event's schema, once per schema. */
  private async ensureTables(client: Client, event: ChangeEvent): Promise<string[]> {
    const known = this.planned.get(event.schemaKey);
    if (known) return known;
    const table = event.table;
    this.ensuredInBatch.add(table);
    await this.lockTableDdl(client, table);
    // Read under the lock: another writer may have changed the table since we last looked.
    let catalog = await readCatalog(client, table);
    const plan = planDdl(event.model, catalog.fact.size ? catalog.fact : null, catalog.latest.size ? catalog.latest : null, catalog.timeTravel);
    if (plan.statements.length) {
      for (const sql of plan.statements) await client.query(sql);
      catalog = await readCatalog(client, table);
      this.log.info('warehouse tables changed to fit the schema', { table, statements: plan.statements });
    }
    for (const notice of plan.notices) this.log.warn(notice, { table });
    for (const reason of plan.resnapshot) this.resnapshots.push({ table, reason });
    if (plan.conflicts.length) this.log.error('incompatible schema change: events of this schema go to cdc.rejected_events', { table, conflicts: plan.conflicts });
    this.catalogs.set(table, catalog);
    this.planned.set(event.schemaKey, plan.conflicts);
    return plan.conflicts;
  }

  /** A source TRUNCATE: recorded for time travel, current rows older than it removed. */
  private async applyTruncate(client: Client, table: string, t: TruncateEvent, out: TableResult): Promise<boolean> {
    await client.query(createTruncatesSql(table));
    const recorded = await client.query(recordTruncateSql(table), [t.lsn.toString(), microsToIso(t.sourceTsMicros), t.txId?.toString() ?? null, t.topic, t.partition, t.offset.toString()]);
    // In a transaction of a table loaded whole (registered in this session): the watermark step
    // empties `_latest` with the rest of the transaction (publish_range). Otherwise at once.
    const deferred = t.txId !== null && this.defers(t.topic, table) && this.publishing.has(table);
    if (!deferred && (await client.query('SELECT to_regclass($1) IS NOT NULL AS exists', [`public.${ident(latestTable(table))}`])).rows[0].exists) {
      await client.query(emptyLatestSql(latestTable(table)), [t.lsn.toString()]);
    }
    if (recorded.rowCount) out.truncates++;
    else out.duplicates++;
    return (recorded.rowCount ?? 0) > 0;
  }

  /** The time-travel objects as the catalog has them now, not as planned when the schema was
   *  first seen: someone may have dropped or replaced them since. Made again at once when they
   *  differ; a replacement PostgreSQL refused (history.ts guarded(): an object not ours is in the
   *  way, a WARNING each time) is tried again only after `timeTravelRetryMs`, or as soon as the
   *  installed objects change. */
  private checksTimeTravel(table: string, event: ChangeEvent): boolean {
    return this.catalogs.has(table) && !this.planned.get(event.schemaKey)?.length;
  }

  /** `installed`: the objects as the batch's bookkeeping statement read them. */
  private async refreshTimeTravel(client: Client, table: string, event: ChangeEvent, installed: TimeTravelState): Promise<void> {
    const catalog = this.catalogs.get(table);
    if (!catalog || !this.checksTimeTravel(table, event)) return;
    const tt = timeTravelCatalogSql(table);
    const read = async () => parseTimeTravelState((await client.query(tt.text, tt.values)).rows[0]);
    const stateKey = (s: TimeTravelState) => `${s.historyView}|${s.asOfFunction}|${s.asOfIndex}|${s.truncatesTable}`;
    const plan = planDdl(event.model, catalog.fact, catalog.latest, installed);
    if (!plan.statements.length) {
      this.timeTravelRefused.delete(table);
      return;
    }
    const refused = this.timeTravelRefused.get(table);
    if (refused && refused.state === stateKey(installed) && Date.now() < refused.retryAt) return;
    for (const sql of plan.statements) await client.query(sql);
    const after = await read();
    this.catalogs.set(table, { ...catalog, timeTravel: after });
    if (planDdl(event.model, catalog.fact, catalog.latest, after).statements.length) {
      this.timeTravelRefused.set(table, { state: stateKey(after), retryAt: Date.now() + (this.options.timeTravelRetryMs ?? TIME_TRAVEL_RETRY_MS) });
    } else {
      this.timeTravelRefused.delete(table);
      this.log.info('time-travel objects made again to match the table', { table });
    }
  }

  private async reportResnapshots(): Promise<void> {
    const list = this.resnapshots;
    this.resnapshots = [];
    for (const { table, reason } of list) {
      if (!this.options.onResnapshot) {
        this.log.warn('rows not changed since this schema change are incomplete in the warehouse until the table is snapshotted again (no re-snapshot hook configured)', { table, reason });
        continue;
      }
      try {
        await this.options.onResnapshot(table, reason);
        this.log.info('re-snapshot requested', { table, reason });
      } catch (err) {
        this.log.error('re-snapshot request failed', { table, reason, error: err });
      }
    }
  }

  private reject(item: BatchItem, table: string, stage: Reject['stage'], reason: string, payload: string | null): Reject {
    return { topic: item.topic, partition: item.partition, offset: item.offset, table, stage, reason, key: item.key, value: item.value, payload };
  }

  private forgetState(): void {
    this.publishing.clear();
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
      this.onConnectionLost?.();
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

/** Namespace of the advisory locks serialising DDL per table (first key of the two-key form). */
const DDL_LOCK_SPACE = 0x43444331; // "CDC1"

function tableOf(d: Decoded): string {
  return d.kind === 'event' ? d.event.table : d.kind === 'reject' ? d.table : '';
}

/** The decoded payload of an event that failed to load, if it can be shown at all. */
function loadPayload(d: Decoded): string | null {
  try {
    if (d.kind === 'event') return eventJson(d.event);
    if (d.kind === 'reject' && d.payload !== undefined) return toJson(d.payload);
  } catch {
    // The value that broke the load may break its JSON too; the raw key and value are kept.
  }
  return null;
}

function tableResult(result: BatchResult, table: string): TableResult {
  let t = result.tables.get(table);
  if (!t) result.tables.set(table, (t = { written: 0, duplicates: 0, unchanged: 0, truncates: 0, sourceTs: [] }));
  return t;
}

function eventJson(event: ChangeEvent): string {
  return toJson({ op: event.op, row: event.row, source_lsn: event.lsn, source_ts_us: event.sourceTsMicros });
}

/** After a time-travel replacement was refused (an analyst's view depends on ours), how long
 *  the writer waits before it tries again. */
const TIME_TRAVEL_RETRY_MS = 30_000;

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

