// The warehouse's record of what it loads (cdc.captured_tables, migration 0004): one row per
// change topic with its warehouse name, and whether an incremental snapshot is due.
// The record lives in the warehouse, not in the processor, so a restart does not re-request a
// snapshot and every processor instance sees the same names.
import type { Pool, PoolClient } from 'pg';
import { inTransaction } from './pool-client';
import { captures, noteRealCollection, splitTopic, topicSafe, warehouseTableName, type CaptureSource } from './topics';

export interface PendingSnapshot {
  topic: string;
  connector: string | null;
  prefix: string;
  schema: string;
  table: string;
  reason: string | null;
}

/** Why a topic is not loaded (two topics, one warehouse name), per topic. */
export type Refusals = Map<string, string>;

// Serialises the bookkeeping of several processors (or several instances of one).
const LOCK = 727004;

export class CapturedTables {
  constructor(private readonly pool: Pool) {}

  /**
   * Claims each topic's warehouse name. The UNIQUE warehouse_table decides: the topic that
   * claimed a name first keeps it, a later topic with the same name gets a refusal naming both.
   */
  async claim(topics: Array<{ topic: string; connector: string | null }>): Promise<Refusals> {
    const refusals: Refusals = new Map();
    if (!topics.length) return refusals;
    await this.inLock(async (c) => {
      for (const { topic, connector } of topics) {
        const name = warehouseTableName(topic);
        const parts = splitTopic(topic);
        await c.query(
          `INSERT INTO cdc.captured_tables (topic, connector, topic_prefix, source_table, warehouse_table)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
          [topic, connector, parts?.prefix ?? '', parts ? `${parts.schema}.${parts.table}` : topic, name],
        );
        const { rows } = await c.query<{ topic: string; warehouse_table: string }>(
          'SELECT topic, warehouse_table FROM cdc.captured_tables WHERE topic = $1 OR warehouse_table = $2', [topic, name]);
        const own = rows.find((r) => r.topic === topic);
        const other = rows.find((r) => r.topic !== topic);
        if (own && own.warehouse_table !== name) {
          refusals.set(topic, `topic ${topic} was loaded into warehouse table "${own.warehouse_table}" but now maps to "${name}" `
            + '(WAREHOUSE_HOME_PREFIX changed?); not loaded into either until its row in cdc.captured_tables is corrected');
        } else if (!own && other) {
          refusals.set(topic, `topics ${other.topic} and ${topic} both map to warehouse table "${name}"; `
            + `${other.topic} was loaded first and keeps it, events of ${topic} are not loaded`);
        }
      }
    });
    return refusals;
  }

  /**
   * Records a connector's named tables (include-list entries naming one table). A table newly
   * named by a connector seen before, or named again after it was out of capture, gets one
   * pending snapshot; the tables of a connector seen for the first time are its own initial
   * snapshot's business. Tables the connector no longer captures are marked removed.
   */
  async sync(src: CaptureSource, named: Array<{ schema: string; table: string }>): Promise<void> {
    await this.inLock(async (c) => {
      const known = (await c.query('SELECT 1 FROM cdc.captured_tables WHERE topic_prefix = $1 LIMIT 1', [src.prefix])).rowCount! > 0;
      for (const { schema, table } of named) {
        // Debezium's topic for it (a table `Weird Things` writes to `….Weird_Things`); source_table keeps the real name.
        const [topicSchema, topicTable] = [topicSafe(schema), topicSafe(table)];
        const topic = `${src.prefix}.${topicSchema}.${topicTable}`;
        if (topicSchema !== schema || topicTable !== table) noteRealCollection(topic, `${schema}.${table}`);
        const inserted = await c.query(
          `INSERT INTO cdc.captured_tables (topic, connector, topic_prefix, source_table, warehouse_table, snapshot_pending, snapshot_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
          [topic, src.connector, src.prefix, `${schema}.${table}`, warehouseTableName(topic), known, known ? 'added to table.include.list' : null],
        );
        if (inserted.rowCount) continue;
        await c.query(
          `UPDATE cdc.captured_tables SET removed_at = NULL, snapshot_pending = true, snapshot_reason = 'back in table.include.list', connector = $2, source_table = $3
           WHERE topic = $1 AND removed_at IS NOT NULL`, [topic, src.connector, `${schema}.${table}`]);
      }
      const { rows } = await c.query<{ topic: string; source_table: string }>(
        'SELECT topic, source_table FROM cdc.captured_tables WHERE topic_prefix = $1 AND removed_at IS NULL', [src.prefix]);
      const gone = rows.filter((r) => {
        const [schema, ...rest] = r.source_table.split('.');
        return !captures(src, schema, rest.join('.'));
      }).map((r) => r.topic);
      if (gone.length) {
        await c.query('UPDATE cdc.captured_tables SET removed_at = now(), snapshot_pending = false WHERE topic = ANY($1)', [gone]);
      }
      await c.query('UPDATE cdc.captured_tables SET connector = $2 WHERE topic_prefix = $1 AND connector IS DISTINCT FROM $2', [src.prefix, src.connector]);
    });
  }

  /** A followed connector that was deleted: its tables are out of capture from now on. */
  async connectorGone(connector: string): Promise<void> {
    await this.pool.query('UPDATE cdc.captured_tables SET removed_at = now(), snapshot_pending = false WHERE connector = $1 AND removed_at IS NULL', [connector]);
  }

  /** The topics in capture, per the record (of these connectors; all when none is named). */
  async inCapture(connectors: string[]): Promise<string[]> {
    const { rows } = await this.pool.query<{ topic: string }>(
      `SELECT topic FROM cdc.captured_tables WHERE removed_at IS NULL AND (cardinality($1::text[]) = 0 OR connector = ANY($1))
       ORDER BY topic`, [connectors]);
    return rows.map((r) => r.topic);
  }

  /** Connectors that have tables in capture, per the record. */
  async connectors(): Promise<string[]> {
    const { rows } = await this.pool.query<{ connector: string }>(
      'SELECT DISTINCT connector FROM cdc.captured_tables WHERE connector IS NOT NULL AND removed_at IS NULL');
    return rows.map((r) => r.connector);
  }

  async pending(prefix: string): Promise<PendingSnapshot[]> {
    const { rows } = await this.pool.query(
      `SELECT topic, connector, topic_prefix, source_table, snapshot_reason FROM cdc.captured_tables
       WHERE topic_prefix = $1 AND snapshot_pending AND removed_at IS NULL ORDER BY topic`, [prefix]);
    return rows.map((r) => {
      const [schema, ...rest] = (r.source_table as string).split('.');
      return { topic: r.topic, connector: r.connector, prefix: r.topic_prefix, schema, table: rest.join('.'), reason: r.snapshot_reason };
    });
  }

  /**
   * Takes the pending snapshots of these topics (each only once, whatever the number of
   * processors) and runs `send` for them; marked requested only if it succeeds.
   */
  async request(topics: string[], send: (taken: string[]) => Promise<void>): Promise<string[]> {
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ topic: string }>(
        'SELECT topic FROM cdc.captured_tables WHERE topic = ANY($1) AND snapshot_pending FOR UPDATE SKIP LOCKED', [topics]);
      const taken = rows.map((r) => r.topic);
      if (taken.length) {
        await send(taken);
        await c.query('UPDATE cdc.captured_tables SET snapshot_pending = false, snapshot_requested_at = now(), snapshot_attempts = snapshot_attempts + 1 WHERE topic = ANY($1)', [taken]);
      }
      return taken;
    });
  }

  /** Asks for a re-snapshot of a warehouse table (e.g. a schema change left its rows stale). */
  async requestResnapshot(warehouseTable: string, reason: string): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE cdc.captured_tables SET snapshot_pending = true, snapshot_reason = $2, snapshot_attempts = 0
       WHERE warehouse_table = $1 AND removed_at IS NULL`, [warehouseTable, reason]);
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * Snapshots asked for at least `afterSeconds` ago whose change topic still does not exist:
   * the signal was lost (Debezium took it from the signal topic, then its task restarted before
   * the first chunk: a config change, a rebalance). Asked for again, up to `maxAttempts` in all
   * (a table with no rows gets no topic from a snapshot either). Returns the topics.
   */
  async retryUnanswered(existingTopics: string[], afterSeconds: number, maxAttempts: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ topic: string }>(
      `UPDATE cdc.captured_tables SET snapshot_pending = true,
              snapshot_reason = 'no snapshot rows ' || round(extract(epoch FROM now() - snapshot_requested_at)) || ' s after the request: asked again'
       WHERE removed_at IS NULL AND NOT snapshot_pending AND snapshot_requested_at < now() - make_interval(secs => $2)
         AND snapshot_attempts < $3 AND NOT (topic = ANY($1))
       RETURNING topic`, [existingTopics, afterSeconds, maxAttempts]);
    return rows.map((r) => r.topic);
  }

  private inLock<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK]);
      return fn(c);
    });
  }
}
