-- Two costs of the watermark step that grew with the backlog (found in a `make bench` run where
-- whole-transaction apply fell 30 s behind at 650 changes/s while the per-batch mode kept up):
--
-- 1. `pending` (transactions recorded beyond the watermark, for pipeline_status and the
--    processor's gauge) was counted in full at every step. The lane that writes the END records
--    (one small message per transaction) runs ahead of the lanes that write the changes, so under
--    load cdc.transactions holds tens or hundreds of thousands of ENDs whose changes have not
--    landed yet, and steps run back to back: each counted them all again (93 ms for 279,000),
--    and that count alone kept a warehouse core busy. It is now counted up to 10,000: 10000 reads
--    "10,000 or more" (make status says so).
-- 2. The search for the first transaction that is not whole called cdc.transaction_whole() once
--    per transaction beyond the watermark: a SQL function whose body holds a subquery is never
--    inlined, and every call pays the function machinery. The same test is written in (negated:
--    a transaction is open while some captured table it touched has fewer events counted than
--    its END record lists). cdc.transaction_whole() stays for pipeline_status and
--    cdc.skip_open_transaction().
--
-- The rest of the step is 0007's, restated whole (a PL/pgSQL function is replaced whole).

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
    passed bigint[];
    from_ts timestamptz;
    to_ts timestamptz;
    pt cdc.published_tables;
BEGIN
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
        SELECT max(x.end_lsn) INTO seen FROM cdc.transactions AS x WHERE x.topic_prefix = p;
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
            FOR pt IN SELECT * FROM cdc.published_tables AS x WHERE x.topic_prefix = p ORDER BY x.warehouse_table LOOP
                PERFORM cdc.publish_range(pt, from_ts, to_ts, xids);
            END LOOP;
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
               pending = (SELECT count(*) FROM (SELECT FROM cdc.transactions AS x
                                                  WHERE x.topic_prefix = p AND x.end_lsn > coalesce(last_lsn, -1)
                                                  LIMIT 10000) AS counted)
         WHERE c.topic_prefix = p
        RETURNING * INTO w;
        RETURN NEXT w;
    END LOOP;
END
$$;
