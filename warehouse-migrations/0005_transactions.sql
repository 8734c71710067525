-- Transaction consistency (docs/ARCHITECTURE.md §6b). Debezium (provide.transaction.metadata)
-- writes an END record per source transaction to <topic.prefix>.transaction: its xid, commit
-- time and the number of change events per captured table. The processor records each END here
-- and counts, per transaction, the change events it wrote (or rejected); cdc.advance_consistency()
-- moves the watermark over the longest run of whole transactions in commit (LSN) order.

-- One row per END record (a Debezium re-send of the same END is the same row), from the
-- watermark's own transaction on: advance_consistency() deletes those behind it.
CREATE TABLE cdc.transactions (
    topic_prefix    text        NOT NULL,
    id              text        NOT NULL,   -- Debezium's id of the END record: "<xid>:<lsn>"
    xid             bigint      NOT NULL,   -- source.txId of the transaction's change events
    end_lsn         bigint      NOT NULL,   -- LSN of the commit record: commit order
    commit_ts       timestamptz NOT NULL,   -- ts_ms of the END record (the commit time, ms)
    event_count     bigint      NOT NULL,
    collections     jsonb       NOT NULL,   -- {"schema.table": events, ...}
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic_prefix, id)
);
CREATE INDEX transactions_order_idx ON cdc.transactions (topic_prefix, end_lsn);

-- Change events written per transaction and table. Rows of transactions the watermark passed
-- are deleted (a later re-send is recognised by <table>_fact and never counted), so xids
-- recycled after 2^32 transactions never meet an old count.
CREATE TABLE cdc.transaction_progress (
    topic_prefix text   NOT NULL,
    xid          bigint NOT NULL,
    collection   text   NOT NULL,           -- schema.table
    written      bigint NOT NULL,
    PRIMARY KEY (topic_prefix, xid, collection)
);

-- The watermark per prefix: every transaction that committed at or before consistent_lsn
-- (LSN) / consistent_through (time) is in the warehouse whole.
CREATE TABLE cdc.consistency (
    topic_prefix       text        PRIMARY KEY,
    consistent_lsn     bigint,
    consistent_through timestamptz,
    pending            bigint      NOT NULL DEFAULT 0,  -- recorded transactions beyond it
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- A transaction is whole when each captured table it touched (one the warehouse loads, see
-- cdc.captured_tables; the signal table, filtered out before Kafka, is not one) has all its
-- events counted.
CREATE FUNCTION cdc.transaction_whole(t cdc.transactions) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
        SELECT FROM jsonb_each_text(t.collections) AS e
        JOIN cdc.captured_tables AS c ON c.topic_prefix = t.topic_prefix AND c.source_table = e.key
        LEFT JOIN cdc.transaction_progress AS p
               ON p.topic_prefix = t.topic_prefix AND p.xid = t.xid AND p.collection = e.key
        WHERE coalesce(p.written, 0) < e.value::bigint)
$$;

-- Moves every prefix's watermark as far as whole transactions reach; returns the new state.
-- Reads only the transactions beyond the stored watermark. consistent_through is the commit
-- time of the last whole transaction, but never at or past the first incomplete one's (two
-- commits in one millisecond), so an instant at or before it never shows half a transaction.
CREATE FUNCTION cdc.advance_consistency() RETURNS SETOF cdc.consistency
LANGUAGE plpgsql AS $$
DECLARE
    p text;
    w cdc.consistency;
    t cdc.transactions;
    last_lsn bigint;
    last_ts timestamptz;
    n bigint;
BEGIN
    -- One advancer at a time (several processors, or a lane and the periodic step).
    PERFORM pg_advisory_xact_lock(1128547121, 5);
    FOR p IN SELECT DISTINCT topic_prefix FROM cdc.transactions
             UNION SELECT topic_prefix FROM cdc.consistency LOOP
        INSERT INTO cdc.consistency (topic_prefix) VALUES (p) ON CONFLICT DO NOTHING;
        SELECT * INTO w FROM cdc.consistency AS c WHERE c.topic_prefix = p FOR UPDATE;
        last_lsn := w.consistent_lsn;
        last_ts := w.consistent_through;
        n := 0;
        FOR t IN SELECT * FROM cdc.transactions AS x
                 WHERE x.topic_prefix = p AND x.end_lsn > coalesce(w.consistent_lsn, -1)
                 ORDER BY x.end_lsn LOOP
            IF NOT cdc.transaction_whole(t) THEN
                IF last_ts IS NOT NULL AND last_ts >= t.commit_ts THEN
                    last_ts := t.commit_ts - interval '1 microsecond';
                END IF;
                EXIT;
            END IF;
            last_lsn := t.end_lsn;
            last_ts := greatest(last_ts, t.commit_ts);
            n := n + 1;
        END LOOP;
        IF n > 0 THEN
            DELETE FROM cdc.transaction_progress AS g USING cdc.transactions AS x
             WHERE x.topic_prefix = p AND x.end_lsn > coalesce(w.consistent_lsn, -1) AND x.end_lsn <= last_lsn
               AND g.topic_prefix = p AND g.xid = x.xid;
        END IF;
        -- One row per source transaction would grow without end: those behind the watermark
        -- have served (an END re-sent later lands behind it and goes at the next step).
        DELETE FROM cdc.transactions AS x WHERE x.topic_prefix = p AND x.end_lsn < last_lsn;
        UPDATE cdc.consistency AS c
           SET consistent_lsn = last_lsn, consistent_through = last_ts, updated_at = now(),
               pending = (SELECT count(*) FROM cdc.transactions AS x WHERE x.topic_prefix = p AND x.end_lsn > coalesce(last_lsn, -1))
         WHERE c.topic_prefix = p
        RETURNING * INTO w;
        RETURN NEXT w;
    END LOOP;
END
$$;

GRANT SELECT, INSERT, DELETE ON cdc.transactions TO processor;
GRANT SELECT, INSERT, UPDATE, DELETE ON cdc.transaction_progress TO processor;
GRANT SELECT, INSERT, UPDATE ON cdc.consistency TO processor;
GRANT EXECUTE ON FUNCTION cdc.advance_consistency() TO processor;

-- For analysts: how far the warehouse is transaction-consistent, per source (topic prefix).
CREATE VIEW public.pipeline_status AS
    SELECT topic_prefix AS source,
           consistent_through,
           CASE WHEN consistent_lsn IS NOT NULL THEN pg_lsn '0/0' + consistent_lsn END AS consistent_lsn,
           extract(epoch FROM now() - consistent_through)::double precision AS lag_seconds,
           pending AS transactions_pending,
           updated_at
    FROM cdc.consistency;
GRANT SELECT ON public.pipeline_status TO analyst, processor;

-- The guard of <table>_as_of(ts): raises when ts is past the watermark of the table's source,
-- where the warehouse may hold part of a transaction. True when the source records no
-- transaction metadata (no watermark known: no guarantee either, as before). SECURITY DEFINER:
-- analysts read cdc.* through it only.
CREATE FUNCTION public.cdc_as_of_allowed(tbl text, ts timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w cdc.consistency;
BEGIN
    SELECT c.* INTO w FROM cdc.captured_tables AS t JOIN cdc.consistency AS c ON c.topic_prefix = t.topic_prefix
     WHERE t.warehouse_table = tbl;
    IF NOT FOUND OR ts <= w.consistent_through THEN
        RETURN true;
    END IF;
    RAISE EXCEPTION '%_as_of(%): past the consistency watermark of source %', tbl, ts, w.topic_prefix
        USING ERRCODE = 'CDC01',
              DETAIL = format('Every source transaction is in the warehouse whole only through %s; later ones may be partly loaded.', coalesce(w.consistent_through::text, '(none yet)')),
              HINT = 'Ask for an instant at or before public.pipeline_status.consistent_through.';
END
$$;
REVOKE ALL ON FUNCTION public.cdc_as_of_allowed(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.cdc_as_of_allowed(text, timestamptz) TO analyst, processor;
