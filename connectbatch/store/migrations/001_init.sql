-- ConnectBatch schema, version 1. Data tables (one per data type) are generated from the
-- schema registry by store/db.py and kept in step with it; everything else is here.

CREATE SEQUENCE IF NOT EXISTS seq_connections;
CREATE SEQUENCE IF NOT EXISTS seq_credentials;
CREATE SEQUENCE IF NOT EXISTS seq_runs;
CREATE SEQUENCE IF NOT EXISTS seq_files;
CREATE SEQUENCE IF NOT EXISTS seq_actions;
CREATE SEQUENCE IF NOT EXISTS seq_audit;

CREATE TABLE connections (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_connections'),
    name            VARCHAR NOT NULL UNIQUE,
    data_type       VARCHAR NOT NULL,
    direction       VARCHAR NOT NULL,            -- inbound | outbound
    method          VARCHAR NOT NULL,            -- email | sftp | ftp
    methodology     VARCHAR NOT NULL,            -- push | pull (inbound), pull_from_us (outbound)
    host            VARCHAR,
    port            INTEGER,
    folder          VARCHAR,
    pattern         VARCHAR NOT NULL DEFAULT '*',
    return_email    VARCHAR,
    schedule        VARCHAR,                     -- cron expression, NULL = manual / push only
    lock_days       INTEGER NOT NULL DEFAULT 30,
    min_age_seconds INTEGER NOT NULL DEFAULT 0,
    timezone        VARCHAR NOT NULL DEFAULT 'UTC',
    encoding        VARCHAR,
    delimiter       VARCHAR NOT NULL DEFAULT ',',
    column_map      JSON,
    after_success   VARCHAR NOT NULL DEFAULT 'leave',  -- leave | archive | delete
    archive_folder  VARCHAR,
    status          VARCHAR NOT NULL DEFAULT 'None',   -- None | In Progress | Completed | Failed
    last_active     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE credentials (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_credentials'),
    connection_id   BIGINT NOT NULL,
    name            VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,            -- provisioned (push, ours) | remote (pull, theirs)
    username        VARCHAR,
    secret          BLOB,                        -- Fernet-encrypted password or private key
    password_hash   VARCHAR,                     -- provisioned logins: scrypt hash only
    host_key        VARCHAR,                     -- pinned SFTP host key (type + base64)
    return_email    VARCHAR,
    is_main         BOOLEAN NOT NULL DEFAULT TRUE,
    status          VARCHAR NOT NULL DEFAULT 'Active',  -- Active | Error
    last_error      VARCHAR,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE runs (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_runs'),
    connection_id   BIGINT NOT NULL,
    trigger         VARCHAR NOT NULL,            -- manual | schedule | push | cli | retry | release
    status          VARCHAR NOT NULL,            -- In Progress | Completed | Failed
    review          VARCHAR,                     -- NULL | quarantined | released | discarded
    review_note     VARCHAR,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    finished_at     TIMESTAMPTZ,
    files_seen      INTEGER NOT NULL DEFAULT 0,
    files_loaded    INTEGER NOT NULL DEFAULT 0,
    files_skipped   INTEGER NOT NULL DEFAULT 0,
    rows_accepted   BIGINT NOT NULL DEFAULT 0,
    rows_rejected   BIGINT NOT NULL DEFAULT 0,
    rows_duplicate  BIGINT NOT NULL DEFAULT 0,
    actions_created BIGINT NOT NULL DEFAULT 0,
    reason          VARCHAR,
    pid             INTEGER,
    retry_of        BIGINT
);

CREATE TABLE files (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_files'),
    connection_id   BIGINT NOT NULL,
    run_id          BIGINT NOT NULL,
    name            VARCHAR NOT NULL,
    remote_path     VARCHAR,
    source          VARCHAR NOT NULL,            -- cli | upload | sftp | ftp | email | push-sftp | ...
    size            BIGINT NOT NULL,
    mtime           TIMESTAMPTZ,
    sha256          VARCHAR NOT NULL,
    state           VARCHAR NOT NULL,            -- fetched | parsed | validated | loaded | rejected | failed | duplicate | quarantined | discarded | skipped
    message         VARCHAR,
    rows_accepted   BIGINT NOT NULL DEFAULT 0,
    rows_rejected   BIGINT NOT NULL DEFAULT 0,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE rejects (
    run_id          BIGINT NOT NULL,
    file_id         BIGINT NOT NULL,
    line            BIGINT NOT NULL,
    column_name     VARCHAR,
    value           VARCHAR,
    reason          VARCHAR NOT NULL
);

CREATE TABLE validation_results (
    run_id          BIGINT NOT NULL,
    file_id         BIGINT NOT NULL,
    success         BOOLEAN NOT NULL,
    critical_failures INTEGER NOT NULL,
    warnings        INTEGER NOT NULL,
    report          JSON NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE actions (
    id              BIGINT NOT NULL,             -- from seq_actions; shown as A-<id>
    connection_id   BIGINT NOT NULL,
    run_id          BIGINT NOT NULL,
    file_id         BIGINT NOT NULL,
    line            BIGINT NOT NULL,
    data_type       VARCHAR NOT NULL,
    source_key      VARCHAR NOT NULL,            -- the sender's id of the record (CallSessionId, OrderId)
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

CREATE TABLE action_audit (
    id              BIGINT NOT NULL DEFAULT nextval('seq_audit'),
    action_id       BIGINT NOT NULL,
    changed_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    actor           VARCHAR NOT NULL,            -- a person, or file:<id> for modification files, or system
    change          VARCHAR NOT NULL,            -- modify | reverse | lock
    old_status      VARCHAR,
    new_status      VARCHAR NOT NULL,
    old_amount      DECIMAL(18,2),
    new_amount      DECIMAL(18,2),
    reason          VARCHAR
);
