-- Whole-transaction apply (docs/ARCHITECTURE.md §6b). Until now every batch merged its events
-- into <table>_latest at once, so while the processor lagged, _latest and _history could show
-- part of a source transaction. Now a change that Debezium placed in a transaction is appended
-- to <table>_fact by its batch (the durable stage: bounded memory, whatever the transaction's
-- size) and reaches _latest only when the consistency watermark passes its transaction: the
-- step that moves the watermark merges, in the same database transaction, the fact rows that
-- committed between the old and the new watermark. _history shows the fact rows up to the
-- watermark. Snapshot reads belong to no transaction and still merge at once.

-- The highest source LSN a consumer group appended from each partition: a batch whose events
-- all lie above it cannot hold a Debezium re-send, so the writer skips the check (writer.ts).
-- Null until the first batch after this migration: the check runs then.
ALTER TABLE cdc.offsets ADD COLUMN max_source_lsn bigint;

-- Tables whose in-transaction changes wait for the watermark (registered by a processor that
-- reads the source's transaction topic, in the batch that first defers a change of the table).
CREATE TABLE cdc.published_tables (
    topic_prefix    text   NOT NULL,
    warehouse_table text   NOT NULL,
    fact_table      text   NOT NULL,
    latest_table    text   NOT NULL,
    truncates_table text   NOT NULL,
    key_columns     text[] NOT NULL,
    registered_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic_prefix, warehouse_table)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON cdc.published_tables TO processor;

-- The commit instant of a transaction to the microsecond: Debezium's END record carries
-- milliseconds only, its change events carry the commit time in microseconds (source.ts_us).
-- Without it a watermark at the END's millisecond would stop short of the transaction's own rows.
ALTER TABLE cdc.transaction_progress ADD COLUMN last_source_ts timestamptz;

-- Merges into <table>_latest the changes of <table>_fact of the source transactions `xids`, which
-- the watermark has just passed, found through the commit-time index between from_ts and to_ts
-- (their commit instants): per key the newest; a delete removes the row; a truncate among them
-- removes the rows older than it first. By transaction, not by time alone: two transactions can
-- commit in one microsecond, or in the other order than their timestamps, and a range of time
-- would then miss the one that became whole second. xids null: every change in the range. Columns come from the catalog, so the
-- same function serves every table and follows its schema changes. Merging a range twice (or a
-- snapshot read already merged) changes nothing: a row never moves back to an older LSN.
CREATE FUNCTION cdc.publish_range(t cdc.published_tables, from_ts timestamptz, to_ts timestamptz, xids bigint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    f regclass := to_regclass(format('public.%I', t.fact_table));
    l regclass := to_regclass(format('public.%I', t.latest_table));
    tr regclass := to_regclass(format('public.%I', t.truncates_table));
    cols text;
    sets text;
    keys text := (SELECT string_agg(format('%I', k), ', ') FROM unnest(t.key_columns) AS k);
    match_l text := (SELECT string_agg(format('l.%1$I = last.%1$I', k), ' AND ') FROM unnest(t.key_columns) AS k);
    match_d text := (SELECT string_agg(format('d.%1$I = last.%1$I', k), ' AND ') FROM unnest(t.key_columns) AS k);
    truncate_lsn bigint;
    truncated text := '';
    n bigint;
BEGIN
    IF f IS NULL OR l IS NULL OR to_ts < from_ts THEN
        RETURN 0;
    END IF;
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('%1$I = EXCLUDED.%1$I', a.attname), ', ') FILTER (WHERE a.attname <> ALL (t.key_columns))
      INTO cols, sets
      FROM pg_attribute AS a
     WHERE a.attrelid = l AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname NOT IN ('source_ts', 'source_lsn', 'processed_at')
       AND EXISTS (SELECT FROM pg_attribute AS b WHERE b.attrelid = f AND b.attname = a.attname AND NOT b.attisdropped);
    sets := concat_ws(', ', sets, 'source_ts = EXCLUDED.source_ts, source_lsn = EXCLUDED.source_lsn, processed_at = EXCLUDED.processed_at');
    IF tr IS NOT NULL THEN
        EXECUTE format('SELECT max(source_lsn) FROM %s WHERE source_ts >= $1 AND source_ts <= $2 AND ($3 IS NULL OR source_txid = ANY ($3))', tr)
           INTO truncate_lsn USING from_ts, to_ts, xids;
        IF truncate_lsn IS NOT NULL THEN
            EXECUTE format('DELETE FROM %s WHERE source_lsn < $1', l) USING truncate_lsn;
        END IF;
        truncated := format('AND last.source_lsn > (SELECT coalesce(max(t.source_lsn), -1) FROM %s AS t WHERE t.source_ts <= $2) ', tr);
    END IF;
    -- The delete guard looks only at deletes the watermark has passed: a newer one still waiting
    -- for its transaction must not hide this (published) version meanwhile.
    EXECUTE format(
        'WITH last AS (SELECT DISTINCT ON (%1$s) * FROM %2$s AS f WHERE f.source_ts >= $1 AND f.source_ts <= $2 '
        'AND ($3 IS NULL OR f.source_txid = ANY ($3)) ORDER BY %1$s, f.source_lsn DESC), '
        'gone AS (DELETE FROM %3$s AS l USING last WHERE last.op = ''d'' AND %4$s AND l.source_lsn <= last.source_lsn) '
        'INSERT INTO %3$s AS l (%5$s, source_ts, source_lsn, processed_at) SELECT %5$s, source_ts, source_lsn, now() FROM last '
        'WHERE op <> ''d'' AND (SELECT 1 FROM %2$s AS d WHERE %6$s AND d.source_lsn > last.source_lsn AND d.op = ''d'' AND d.source_ts <= $2 LIMIT 1) IS NULL '
        '%7$s'
        'ON CONFLICT (%1$s) DO UPDATE SET %8$s WHERE l.source_lsn <= EXCLUDED.source_lsn',
        keys, f, l, match_l, cols, match_d, truncated, sets)
    USING from_ts, to_ts, xids;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
GRANT EXECUTE ON FUNCTION cdc.publish_range(cdc.published_tables, timestamptz, timestamptz, bigint[]) TO processor;

-- The watermark step, now set-based (one pass over the transactions beyond the watermark, not a
-- loop per transaction: thousands of small transactions a second) and publishing what it passes.
CREATE OR REPLACE FUNCTION cdc.advance_consistency() RETURNS SETOF cdc.consistency
LANGUAGE plpgsql AS $$
DECLARE
    p text;
    w cdc.consistency;
    open_lsn bigint;
    open_ts timestamptz;
    last_lsn bigint;
    last_ts timestamptz;
    through timestamptz;
    n bigint;
    seen bigint;
    xids bigint[];
    from_ts timestamptz;
    to_ts timestamptz;
    pt cdc.published_tables;
BEGIN
    -- One step at a time (several processors, lanes kicking it after their commits).
    PERFORM pg_advisory_xact_lock(1128547121, 5);
    -- The sources: those with a watermark, and any with END records but none yet, found by
    -- skipping through the (topic_prefix, end_lsn) index (a DISTINCT would read the whole table,
    -- whose rows come and go by the thousand).
    FOR p IN WITH RECURSIVE found(v) AS (
                 SELECT min(x.topic_prefix) FROM cdc.transactions AS x
                 UNION ALL
                 SELECT (SELECT min(x.topic_prefix) FROM cdc.transactions AS x WHERE x.topic_prefix > f.v)
                   FROM found AS f WHERE f.v IS NOT NULL)
             SELECT v FROM found WHERE v IS NOT NULL
             UNION SELECT topic_prefix FROM cdc.consistency LOOP
        INSERT INTO cdc.consistency (topic_prefix) VALUES (p) ON CONFLICT DO NOTHING;
        SELECT * INTO w FROM cdc.consistency AS c WHERE c.topic_prefix = p FOR UPDATE;
        -- Each statement below sees what had committed when it began (READ COMMITTED), so the
        -- step first fixes how far it looks: END records commit in commit order (one partition,
        -- one lane), so every one up to `seen` is visible to the later statements. Without the
        -- bound, an END recorded between the search for the first incomplete transaction and
        -- the move would pass unchecked (and its rows, not loaded yet, never be published).
        SELECT max(x.end_lsn) INTO seen FROM cdc.transactions AS x WHERE x.topic_prefix = p;
        -- The first transaction beyond the watermark that is not whole yet (commit order): an
        -- index scan that stops there. Counts only grow, so those before it stay whole.
        SELECT x.end_lsn, x.commit_ts INTO open_lsn, open_ts FROM cdc.transactions AS x
         WHERE x.topic_prefix = p AND x.end_lsn > coalesce(w.consistent_lsn, -1) AND x.end_lsn <= seen
           AND NOT cdc.transaction_whole(x)
         ORDER BY x.end_lsn LIMIT 1;
        -- Every transaction before it is whole: the watermark moves over all of them.
        SELECT max(x.end_lsn), max(greatest(x.commit_ts, g.ts)), count(*),
               array_agg(x.xid) FILTER (WHERE g.ts IS NOT NULL), min(g.ts), max(g.ts)
          INTO last_lsn, last_ts, n, xids, from_ts, to_ts
          FROM cdc.transactions AS x
          LEFT JOIN LATERAL (SELECT max(g.last_source_ts) AS ts FROM cdc.transaction_progress AS g
                              WHERE g.topic_prefix = p AND g.xid = x.xid) AS g ON true
         WHERE x.topic_prefix = p AND x.end_lsn > coalesce(w.consistent_lsn, -1)
           AND x.end_lsn <= coalesce(open_lsn - 1, seen);
        through := w.consistent_through;
        IF n > 0 THEN
            through := greatest(through, last_ts);
        ELSE
            last_lsn := w.consistent_lsn;
        END IF;
        -- Never at or past the open transaction's commit (two commits in one millisecond: the
        -- END's time is the millisecond, its rows are at or after it), never backwards.
        IF open_ts IS NOT NULL AND through >= open_ts THEN
            through := greatest(w.consistent_through, open_ts - interval '1 microsecond');
        END IF;
        -- The changes of the transactions passed now (those with events: progress rows) reach
        -- _latest, in this database transaction.
        IF xids IS NOT NULL THEN
            FOR pt IN SELECT * FROM cdc.published_tables AS x WHERE x.topic_prefix = p ORDER BY x.warehouse_table LOOP
                PERFORM cdc.publish_range(pt, from_ts, to_ts, xids);
            END LOOP;
        END IF;
        IF n > 0 THEN
            DELETE FROM cdc.transaction_progress AS g USING cdc.transactions AS x
             WHERE x.topic_prefix = p AND x.end_lsn > coalesce(w.consistent_lsn, -1) AND x.end_lsn <= last_lsn
               AND g.topic_prefix = p AND g.xid = x.xid;
        END IF;
        -- One row per source transaction would grow without end: those the watermark passed
        -- have served. Only the range it moved over: the index below the old watermark holds
        -- the dead entries of every earlier step until vacuum; walking them each step costs more
        -- than the step. (An END re-sent behind the watermark is not recorded: transactions.ts.)
        DELETE FROM cdc.transactions AS x
         WHERE x.topic_prefix = p AND x.end_lsn >= coalesce(w.consistent_lsn, -1) AND x.end_lsn < last_lsn;
        UPDATE cdc.consistency AS c
           SET consistent_lsn = last_lsn, consistent_through = through, updated_at = now(),
               pending = (SELECT count(*) FROM cdc.transactions AS x WHERE x.topic_prefix = p AND x.end_lsn > coalesce(last_lsn, -1))
         WHERE c.topic_prefix = p
        RETURNING * INTO w;
        RETURN NEXT w;
    END LOOP;
END
$$;

-- Rows of both come and go with every source transaction: vacuum them often, not at 20% of
-- a table that is nearly empty.
ALTER TABLE cdc.transactions SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
ALTER TABLE cdc.transaction_progress SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);

-- Stops loading one table in whole transactions (a processor switched to APPLY_MODE=event):
-- what waits for the watermark is merged now, so no change is left behind.
CREATE FUNCTION cdc.unpublish_table(prefix text, tbl text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    pt cdc.published_tables;
BEGIN
    PERFORM pg_advisory_xact_lock(1128547121, 5);
    SELECT * INTO pt FROM cdc.published_tables WHERE topic_prefix = prefix AND warehouse_table = tbl;
    IF FOUND THEN
        PERFORM cdc.publish_range(pt, coalesce((SELECT consistent_through FROM cdc.consistency WHERE topic_prefix = prefix), '-infinity'), 'infinity', NULL);
        DELETE FROM cdc.published_tables WHERE topic_prefix = prefix AND warehouse_table = tbl;
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION cdc.unpublish_table(text, text) TO processor;

-- The way out of a watermark that cannot move because an event of its next transaction will
-- never arrive (say it was rejected before decoding, so its transaction is unknown): marks that
-- transaction whole. For an operator; `make status` names the transaction it waits for.
CREATE FUNCTION cdc.skip_open_transaction(prefix text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    x cdc.transactions;
BEGIN
    PERFORM pg_advisory_xact_lock(1128547121, 5);
    SELECT t.* INTO x FROM cdc.transactions AS t LEFT JOIN cdc.consistency AS c ON c.topic_prefix = t.topic_prefix
     WHERE t.topic_prefix = prefix AND t.end_lsn > coalesce(c.consistent_lsn, -1) AND NOT cdc.transaction_whole(t)
     ORDER BY t.end_lsn LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO cdc.transaction_progress AS g (topic_prefix, xid, collection, written)
    SELECT prefix, x.xid, e.key, e.value::bigint FROM jsonb_each_text(x.collections) AS e
    ON CONFLICT (topic_prefix, xid, collection) DO UPDATE SET written = greatest(g.written, EXCLUDED.written);
    RAISE NOTICE 'transaction % (xid %) of source % taken as whole', x.id, x.xid, prefix;
    RETURN x.id;
END
$$;
REVOKE ALL ON FUNCTION cdc.skip_open_transaction(text) FROM PUBLIC;

-- Through which source commit time a table's `_history` shows changes: the watermark of its
-- source when the table is loaded in whole transactions, otherwise without limit. SECURITY
-- DEFINER: analysts read cdc.* through it only.
CREATE FUNCTION public.cdc_visible_through(tbl text) RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT coalesce(c.consistent_through, '-infinity')
                       FROM cdc.published_tables AS p
                       LEFT JOIN cdc.consistency AS c ON c.topic_prefix = p.topic_prefix
                      WHERE p.warehouse_table = tbl
                      LIMIT 1), 'infinity')
$$;
REVOKE ALL ON FUNCTION public.cdc_visible_through(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.cdc_visible_through(text) TO analyst, processor;

-- pipeline_status names the transaction the watermark waits for and what it lacks, so a
-- stalled watermark explains itself.
CREATE OR REPLACE VIEW public.pipeline_status AS
    SELECT c.topic_prefix AS source,
           c.consistent_through,
           CASE WHEN c.consistent_lsn IS NOT NULL THEN pg_lsn '0/0' + c.consistent_lsn END AS consistent_lsn,
           extract(epoch FROM now() - c.consistent_through)::double precision AS lag_seconds,
           c.pending AS transactions_pending,
           c.updated_at,
           (SELECT format('transaction %s (xid %s): %s', x.id, x.xid,
                          (SELECT string_agg(format('%s has %s of %s events', e.key, coalesce(g.written, 0), e.value), ', ')
                             FROM jsonb_each_text(x.collections) AS e
                             JOIN cdc.captured_tables AS t ON t.topic_prefix = x.topic_prefix AND t.source_table = e.key
                             LEFT JOIN cdc.transaction_progress AS g ON g.topic_prefix = x.topic_prefix AND g.xid = x.xid AND g.collection = e.key
                            WHERE coalesce(g.written, 0) < e.value::bigint))
              FROM cdc.transactions AS x
             WHERE x.topic_prefix = c.topic_prefix AND x.end_lsn > coalesce(c.consistent_lsn, -1) AND NOT cdc.transaction_whole(x)
             ORDER BY x.end_lsn LIMIT 1) AS waiting_for
    FROM cdc.consistency AS c;

-- Requests of an incremental snapshot sent for a table since its last reason: a request whose
-- table still has no topic later is sent again, a bounded number of times (capture.ts).
ALTER TABLE cdc.captured_tables ADD COLUMN snapshot_attempts integer NOT NULL DEFAULT 0;
