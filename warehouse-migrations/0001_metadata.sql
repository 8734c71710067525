-- Pipeline metadata lives in schema "cdc", apart from the analytics tables in "public"
-- that analysts and BI tools see. The roles "processor" and "analyst" are created by
-- infra (their passwords come from configuration); this file only grants.

CREATE SCHEMA IF NOT EXISTS cdc;

-- The consumed position of every topic-partition, written in the same transaction as
-- the rows it produced: the warehouse, not Kafka, is the source of truth for offsets.
CREATE TABLE cdc.offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Events the processor could not load: nothing is dropped silently.
-- stage: decode (not valid Avro / unknown schema), schema (incompatible column type),
-- validate (a table rule failed); 0002 adds load (the warehouse refused the event).
CREATE TABLE cdc.rejected_events (
    id           bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    source_table text,
    stage        text        NOT NULL CHECK (stage IN ('decode', 'schema', 'validate')),
    reason       text        NOT NULL,
    key_raw      bytea,
    value_raw    bytea,
    payload      jsonb,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, partition, "offset")
);

GRANT USAGE ON SCHEMA cdc TO processor;
GRANT SELECT, INSERT, UPDATE ON cdc.offsets TO processor;
GRANT SELECT, INSERT ON cdc.rejected_events TO processor;
GRANT USAGE ON SEQUENCE cdc.rejected_events_id_seq TO processor;

-- The processor creates and evolves <table>_fact / <table>_latest from the Avro schemas;
-- analysts can read whatever it creates there, and nothing else.
GRANT USAGE, CREATE ON SCHEMA public TO processor;
GRANT USAGE ON SCHEMA public TO analyst;
ALTER DEFAULT PRIVILEGES FOR ROLE processor IN SCHEMA public GRANT SELECT ON TABLES TO analyst;

-- What analysts may know about rejects: no raw payloads.
CREATE VIEW public.rejected_events_summary AS
    SELECT id, topic, partition, "offset", source_table, stage, reason, rejected_at
    FROM cdc.rejected_events;
GRANT SELECT ON public.rejected_events_summary TO analyst;
