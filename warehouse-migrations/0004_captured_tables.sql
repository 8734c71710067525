-- Which change topics the warehouse loads, under which warehouse name, and which tables were
-- asked to be snapshot. One row per change topic (<topic.prefix>.<schema>.<table>).
-- warehouse_table is UNIQUE: the first topic to claim a name keeps it, and the events of any
-- other topic that maps to the same name are rejected with both topics named, instead of two
-- source tables silently sharing <name>_fact / <name>_latest.
CREATE TABLE cdc.captured_tables (
    topic                 text        PRIMARY KEY,
    connector             text,                   -- null when loaded from PROCESSOR_TOPICS without Connect
    topic_prefix          text        NOT NULL,
    source_table          text        NOT NULL,   -- schema.table
    warehouse_table       text        NOT NULL UNIQUE,
    first_seen            timestamptz NOT NULL DEFAULT now(),
    removed_at            timestamptz,            -- out of the connector's include list since
    -- An incremental snapshot is due (a table newly in capture, back in capture, or stale after
    -- a schema change) and not yet sent to the connector.
    snapshot_pending      boolean     NOT NULL DEFAULT false,
    snapshot_reason       text,
    snapshot_requested_at timestamptz
);

GRANT SELECT, INSERT, UPDATE ON cdc.captured_tables TO processor;
