-- Two costs of the watermark step when the END records run ahead of their changes (under load
-- the lane that writes them is ahead by tens of thousands, and every batch asks for a step). In a
-- benchmark at 1,000 changes/s whole-transaction apply fell 6 s behind while its warehouse
-- backends used 39 CPU-s in 48 s; event mode kept up.
--
-- 1. The search for the first open transaction was planned, on the queue tables' usual
--    statistics (analyzed nearly empty: 1 row in 518 pages), as a sequential scan of
--    cdc.transactions, the open-transaction test on every row beyond the watermark (each with
--    a sequential scan of cdc.transaction_progress), then a sort: 250-390 ms per step with
--    60,000 ENDs ahead, where the index on (topic_prefix, end_lsn) reaches the first open one
--    in a few rows (a bitmap scan and a sort were chosen too, and the newest END was found as
--    max() over a walk of the primary key: each read all 12,000 ENDs ahead in a test). The queue statements of the step now run without sequential or bitmap scans or
--    sorts (these tables' statistics are never right for long: they fill and empty by the
--    thousand every second), and with jit off (a disabled plan's cost, 10^10, passes every JIT
--    threshold: 260 ms compiling a statement that runs in 0.2). The merges into _latest
--    (publish_range) keep the session's settings.
-- 2. `pending` is counted only when asked: steps follow each other every few ms and each counted
--    up to 10,000 ENDs again (0008), 2-4 ms. The processor asks at most once a second
--    (cdc.advance_consistency(true)); other steps leave the last count in place.
--    cdc.advance_consistency() stays, counting every time, for processors older than this one.
--
-- The rest is 0008's step, restated whole (a PL/pgSQL function is replaced whole).

-- NULL: plans that walk the queue tables' indexes in order (no sequential or bitmap scan, no
-- sort, no JIT); otherwise the settings given back, as read before.
CREATE FUNCTION cdc.queue_planner(settings text[]) RETURNS void
LANGUAGE sql AS $$
    SELECT set_config('enable_seqscan', coalesce(settings[1], 'off'), true),
           set_config('enable_bitmapscan', coalesce(settings[2], 'off'), true),
           set_config('enable_sort', coalesce(settings[3], 'off'), true),
           set_config('jit', coalesce(settings[4], 'off'), true)
$$;
GRANT EXECUTE ON FUNCTION cdc.queue_planner(text[]) TO processor;

CREATE FUNCTION cdc.advance_consistency(count_pending boolean) RETURNS SETOF cdc.consistency
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
    passed bigint[];
    from_ts timestamptz;
    to_ts timestamptz;
    pt cdc.published_tables;
    -- The planner settings the merges keep (see the head of this file).
    planner text[] := ARRAY[current_setting('enable_seqscan'), current_setting('enable_bitmapscan'), current_setting('enable_sort'), current_setting('jit')];
BEGIN
    PERFORM cdc.queue_planner(NULL);
    -- One step at a time (several processors, lanes kicking it after their commits).
    PERFORM pg_advisory_xact_lock(1128547121, 5);
    -- The sources: those with a watermark, and any with END records but none yet, found by
    -- skipping through the (topic_prefix, end_lsn) index (a DISTINCT would read the whole table,
    -- whose rows come and go by the thousand). From the top down: a source's newest END is never
    -- deleted, while below its watermark lie the dead entries of every step since the last
    -- vacuum, which a scan from the bottom walked first (and a long step keeps vacuum from them).
    FOR p IN WITH RECURSIVE found(v) AS (
                 (SELECT x.topic_prefix FROM cdc.transactions AS x ORDER BY x.topic_prefix DESC, x.end_lsn DESC LIMIT 1)
                 UNION ALL
                 SELECT (SELECT x.topic_prefix FROM cdc.transactions AS x WHERE x.topic_prefix < f.v
                          ORDER BY x.topic_prefix DESC, x.end_lsn DESC LIMIT 1)
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
        -- (Not max(): planned on "empty" statistics as a walk of the primary key over every END.)
        SELECT x.end_lsn INTO seen FROM cdc.transactions AS x WHERE x.topic_prefix = p ORDER BY x.end_lsn DESC LIMIT 1;
        -- The first transaction beyond the watermark that is not whole yet (commit order): an
        -- index scan that stops there. Counts only grow, so those before it stay whole. The
        -- test is cdc.transaction_whole()'s, written in: see the head of this file.
        SELECT x.end_lsn, x.commit_ts INTO open_lsn, open_ts FROM cdc.transactions AS x
         WHERE x.topic_prefix = p AND x.end_lsn > coalesce(w.consistent_lsn, -1) AND x.end_lsn <= seen
           AND EXISTS (SELECT FROM jsonb_each_text(x.collections) AS e
                        JOIN cdc.captured_tables AS c ON c.topic_prefix = x.topic_prefix AND c.source_table = e.key
                        LEFT JOIN cdc.transaction_progress AS g
                               ON g.topic_prefix = x.topic_prefix AND g.xid = x.xid AND g.collection = e.key
                       WHERE coalesce(g.written, 0) < e.value::bigint)
         ORDER BY x.end_lsn LIMIT 1;
        -- Every transaction before it is whole: the watermark moves over all of them.
        SELECT max(x.end_lsn), max(greatest(x.commit_ts, g.ts)), count(*),
               array_agg(x.xid) FILTER (WHERE g.ts IS NOT NULL), min(g.ts), max(g.ts), array_agg(x.xid)
          INTO last_lsn, last_ts, n, xids, from_ts, to_ts, passed
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
            PERFORM cdc.queue_planner(planner);
            FOR pt IN SELECT * FROM cdc.published_tables AS x WHERE x.topic_prefix = p ORDER BY x.warehouse_table LOOP
                PERFORM cdc.publish_range(pt, from_ts, to_ts, xids);
            END LOOP;
            PERFORM cdc.queue_planner(NULL);
        END IF;
        -- By the list of passed xids, not a join with cdc.transactions: both tables are queues
        -- whose statistics say "empty" most of the time, and the join was planned as a nested
        -- loop that read every passed transaction once per progress row (14 s for 5,000).
        IF n > 0 THEN
            DELETE FROM cdc.transaction_progress AS g WHERE g.topic_prefix = p AND g.xid = ANY (passed);
        END IF;
        -- One row per source transaction would grow without end: those the watermark passed
        -- have served. Only the range it moved over: the index below the old watermark holds
        -- the dead entries of every earlier step until vacuum; walking them each step costs more
        -- than the step. (An END re-sent behind the watermark is not recorded: transactions.ts.)
        DELETE FROM cdc.transactions AS x
         WHERE x.topic_prefix = p AND x.end_lsn >= coalesce(w.consistent_lsn, -1) AND x.end_lsn < last_lsn;
        UPDATE cdc.consistency AS c
           SET consistent_lsn = last_lsn, consistent_through = through, updated_at = now(),
               pending = CASE WHEN count_pending
                              THEN (SELECT count(*) FROM (SELECT FROM cdc.transactions AS x
                                                           WHERE x.topic_prefix = p AND x.end_lsn > coalesce(last_lsn, -1)
                                                           LIMIT 10000) AS counted)
                              ELSE c.pending END
         WHERE c.topic_prefix = p
        RETURNING * INTO w;
        RETURN NEXT w;
    END LOOP;
    PERFORM cdc.queue_planner(planner);
END
$$;

GRANT EXECUTE ON FUNCTION cdc.advance_consistency(boolean) TO processor;

CREATE OR REPLACE FUNCTION cdc.advance_consistency() RETURNS SETOF cdc.consistency
LANGUAGE sql AS $$ SELECT * FROM cdc.advance_consistency(true) $$;
