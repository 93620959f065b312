-- Status sync-back (issue 12): after the one-shot results file, an inbound connection may
-- report every later change of its records back to the partner (accepted, rejected,
-- modified, reversed, locked, released, discarded) as incremental status files in its
-- partner's outbound folder and/or by e-mail. Off by default.
ALTER TABLE connections ADD COLUMN IF NOT EXISTS sync_back JSON;      -- ["files", "email"]; NULL = off
ALTER TABLE connections ADD COLUMN IF NOT EXISTS status_words JSON;   -- {"reversed": "deleted", ...} overrides

-- The header each file arrived with, so a status file names the partner's key columns as the
-- partner wrote them, long after the file (and its held copy) is gone.
CREATE TABLE IF NOT EXISTS file_headers (
    file_id         BIGINT PRIMARY KEY,
    header          JSON NOT NULL
);

-- The sync-back ledger: one row per status file written (channel files) or e-mailed
-- (channel email) for an inbound connection.
CREATE SEQUENCE IF NOT EXISTS seq_sync_backs;
CREATE TABLE IF NOT EXISTS sync_backs (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_sync_backs'),
    connection_id   BIGINT NOT NULL,
    channel         VARCHAR NOT NULL,            -- files | email
    trigger         VARCHAR NOT NULL,            -- manual | cli | schedule
    file_name       VARCHAR NOT NULL,
    rows            BIGINT NOT NULL,
    recipient       VARCHAR,                     -- channel email: the address it went to
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- The persisted sync-back watermark, per inbound connection and channel: what was reported
-- already. kind 'file' (item = files.id: its load outcome, a release or a discard) and kind
-- 'change' (item = action_audit.id). A set, like export_watermarks: files and changes commit
-- out of id order, and a set skips nothing and repeats nothing.
CREATE TABLE IF NOT EXISTS sync_back_watermarks (
    connection_id   BIGINT NOT NULL,
    channel         VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,            -- file | change
    item_id         BIGINT NOT NULL,
    sync_back_id    BIGINT NOT NULL,
    PRIMARY KEY (connection_id, channel, kind, item_id)
);
