-- The actions' source_key ("C-1 / T-2": which record of the partner's an action is) stored
-- uncompressed. Each action's key is unique, so DuckDB's string compression (dictionary + FSST,
-- chosen by analysing every value as it is written) gained little and cost ~0.47 s of CPU per
-- million actions on the load's critical path: more than half of the actions insert of a 1M-row
-- file (issue 13). Uncompressed, a million keys take ~24 MB more on disk, and the key search of
-- the call-data and actions screens reads them without decompressing.
--
-- DuckDB sets a column's compression only when the column is created, and a column added by
-- ALTER cannot take NOT NULL back while the update that filled it is pending, so the table is
-- rebuilt: the same columns, in the same order, with the same constraints and defaults.
CREATE TABLE actions_rebuilt (
    id              BIGINT NOT NULL,             -- from seq_actions; shown as A-<id>
    connection_id   BIGINT NOT NULL,
    run_id          BIGINT NOT NULL,
    file_id         BIGINT NOT NULL,
    line            BIGINT NOT NULL,
    data_type       VARCHAR NOT NULL,
    source_key      VARCHAR USING COMPRESSION uncompressed NOT NULL,   -- the sender's id of the record
    campaign_id     BIGINT,
    media_id        BIGINT,
    event_date      TIMESTAMPTZ NOT NULL,
    amount          DECIMAL(18,2) NOT NULL,
    original_amount DECIMAL(18,2) NOT NULL,
    status          VARCHAR NOT NULL,            -- PENDING | MODIFIED | REVERSED | LOCKED
    state_before_lock VARCHAR,
    reason          VARCHAR,
    lock_at         TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
INSERT INTO actions_rebuilt SELECT * FROM actions;
DROP TABLE actions;
ALTER TABLE actions_rebuilt RENAME TO actions;
