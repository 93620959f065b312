-- People who log in to the app (connectbatch/services/users.py): a unique name, a role, an
-- scrypt password hash, a disabled flag, and the failed logins that throttle guessing.
CREATE SEQUENCE IF NOT EXISTS seq_users;

CREATE TABLE users (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_users'),
    name            VARCHAR NOT NULL UNIQUE,
    role            VARCHAR NOT NULL,             -- admin | analyst | reviewer | partner_manager
    password_hash   VARCHAR NOT NULL,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    last_failed_at  TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
