-- A watermark can also wait for END records that have not come. Debezium writes a transaction's
-- changes and its END record to different topics, through one producer: a producer that holds
-- the END back leaves changes in the warehouse that no END record lists (seen in make chaos:
-- after a rolling restart of the brokers, Connect's producer retried `<prefix>.transaction` for
-- minutes while the change topics were delivered). pipeline_status.waiting_for said nothing then,
-- as it looked only at recorded END records; it now also names how many transactions beyond
-- the watermark have change events in the warehouse but no END record yet, with their oldest
-- commit time. The processor logs it when its watermark stands still (APPLY_STALL_WARN_MS). A
-- large transaction still arriving reads the same for a while: its END comes after its changes.
--
-- The open-transaction test is cdc.transaction_whole()'s, written in (as in 0008's step): that SQL
-- function was inlined into the view and its body checked as the reader, and analysts, who have
-- no USAGE on schema cdc, got "permission denied for schema cdc" for waiting_for (the view's own
-- references to cdc.* are checked as its owner).
--
-- The second part is evaluated only when no recorded transaction is open (coalesce stops at its first non-null
-- argument): the anti-join reads the progress rows, which are the transactions in flight.
CREATE OR REPLACE VIEW public.pipeline_status AS
    SELECT c.topic_prefix AS source,
           c.consistent_through,
           CASE WHEN c.consistent_lsn IS NOT NULL THEN pg_lsn '0/0' + c.consistent_lsn END AS consistent_lsn,
           extract(epoch FROM now() - c.consistent_through)::double precision AS lag_seconds,
           c.pending AS transactions_pending,
           c.updated_at,
           coalesce(
             (SELECT format('transaction %s (xid %s): %s', x.id, x.xid,
                            (SELECT string_agg(format('%s has %s of %s events', e.key, coalesce(g.written, 0), e.value), ', ')
                               FROM jsonb_each_text(x.collections) AS e
                               JOIN cdc.captured_tables AS t ON t.topic_prefix = x.topic_prefix AND t.source_table = e.key
                               LEFT JOIN cdc.transaction_progress AS g ON g.topic_prefix = x.topic_prefix AND g.xid = x.xid AND g.collection = e.key
                              WHERE coalesce(g.written, 0) < e.value::bigint))
                FROM cdc.transactions AS x
               WHERE x.topic_prefix = c.topic_prefix AND x.end_lsn > coalesce(c.consistent_lsn, -1)
                 AND EXISTS (SELECT FROM jsonb_each_text(x.collections) AS e
                              JOIN cdc.captured_tables AS t ON t.topic_prefix = x.topic_prefix AND t.source_table = e.key
                              LEFT JOIN cdc.transaction_progress AS g
                                     ON g.topic_prefix = x.topic_prefix AND g.xid = x.xid AND g.collection = e.key
                             WHERE coalesce(g.written, 0) < e.value::bigint)
               ORDER BY x.end_lsn LIMIT 1),
             (SELECT format('the END records of %s transaction(s) (%s change events in the warehouse, oldest committed %s): none yet from %s.transaction',
                            count(DISTINCT g.xid), sum(g.written), min(g.last_source_ts), c.topic_prefix)
                FROM cdc.transaction_progress AS g
               WHERE g.topic_prefix = c.topic_prefix
                 -- Not those the watermark is already past (an END re-sent behind it is not
                 -- recorded: their rows would wait for ever).
                 AND g.last_source_ts > coalesce(c.consistent_through, '-infinity')
                 AND NOT EXISTS (SELECT FROM cdc.transactions AS x WHERE x.topic_prefix = g.topic_prefix AND x.xid = g.xid)
              HAVING count(*) > 0)) AS waiting_for
    FROM cdc.consistency AS c;
