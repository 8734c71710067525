-- Events the warehouse itself refused while loading a batch (a value its column type or a
-- constraint rejects, an error while staging): the processor isolates each such event and
-- stores it here with stage 'load' and the error, so one bad row never stops the stream.
-- stage: decode (not valid Avro / unknown schema), schema (incompatible column type),
-- validate (a table rule failed), load (the warehouse refused the event while loading it).
ALTER TABLE cdc.rejected_events DROP CONSTRAINT IF EXISTS rejected_events_stage_check;
ALTER TABLE cdc.rejected_events ADD CONSTRAINT rejected_events_stage_check
    CHECK (stage IN ('decode', 'schema', 'validate', 'load'));
