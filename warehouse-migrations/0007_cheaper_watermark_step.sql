-- A cheaper watermark step (issue: performance round 2). Measured on a quiet machine at 500
-- changes/s (pg_stat_user_functions), a step took 6.3 ms in the warehouse: 2.6 ms in
-- publish_range, most of it planning its dynamic merge again at every call, and 1 ms calling
-- cdc.transaction_whole() once per transaction beyond the watermark (a SQL function with a
-- subquery is never inlined: each call pays the function machinery). Same results, less work:
-- - publish_range prepares its merge once per session and statement text;
-- - the search for the first transaction that is not whole has the test inline.
-- cdc.transaction_whole() stays for pipeline_status and cdc.skip_open_transaction().

-- DateStyle fixed for the call: the instants go to the prepared statement as text literals.
CREATE OR REPLACE FUNCTION cdc.publish_range(t cdc.published_tables, from_ts timestamptz, to_ts timestamptz, xids bigint[]) RETURNS bigint
LANGUAGE plpgsql SET DateStyle = 'ISO, YMD' AS $$
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
    stmt text;
    prepared text;
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
    stmt := format(
        'WITH last AS (SELECT DISTINCT ON (%1$s) * FROM %2$s AS f WHERE f.source_ts >= $1 AND f.source_ts <= $2 '
        'AND ($3 IS NULL OR f.source_txid = ANY ($3)) ORDER BY %1$s, f.source_lsn DESC), '
        'gone AS (DELETE FROM %3$s AS l USING last WHERE last.op = ''d'' AND %4$s AND l.source_lsn <= last.source_lsn), '
        'merged AS (INSERT INTO %3$s AS l (%5$s, source_ts, source_lsn, processed_at) SELECT %5$s, source_ts, source_lsn, now() FROM last '
        'WHERE op <> ''d'' AND (SELECT 1 FROM %2$s AS d WHERE %6$s AND d.source_lsn > last.source_lsn AND d.op = ''d'' AND d.source_ts <= $2 LIMIT 1) IS NULL '
        '%7$s'
        'ON CONFLICT (%1$s) DO UPDATE SET %8$s WHERE l.source_lsn <= EXCLUDED.source_lsn RETURNING 1) '
        'SELECT count(*) FROM merged',
        keys, f, l, match_l, cols, match_d, truncated, sets);
    -- Prepared once per session and statement text (the text changes with the table's columns):
    -- planning it at every step cost more than running it. The name is the text's digest.
    prepared := 'cdc_publish_' || md5(stmt);
    IF NOT EXISTS (SELECT FROM pg_prepared_statements AS s WHERE s.name = prepared) THEN
        EXECUTE format('PREPARE %I(timestamptz, timestamptz, bigint[]) AS %s', prepared, stmt);
    END IF;
    -- EXECUTE of a prepared statement takes no parameters from USING: literals (ISO, with their
    -- UTC offset and every microsecond; 'infinity' as such).
    -- The count comes back as a row: ROW_COUNT is not set through a prepared statement.
    EXECUTE format('EXECUTE %I(%L, %L, %L)', prepared, from_ts, to_ts, xids) INTO n;
    RETURN n;
END
$$;

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
           AND EXISTS (SELECT FROM jsonb_each_text(x.collections) AS e
                        JOIN cdc.captured_tables AS c ON c.topic_prefix = x.topic_prefix AND c.source_table = e.key
                        LEFT JOIN cdc.transaction_progress AS g ON g.topic_prefix = x.topic_prefix AND g.xid = x.xid AND g.collection = e.key
                       WHERE coalesce(g.written, 0) < e.value::bigint)
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
