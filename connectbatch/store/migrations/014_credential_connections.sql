-- Credentials reuse (issue 11): a credential set belongs to the partner and may be used by
-- several of its connections. `credentials.connection_id` stays the connection that created
-- it (its owner, moved to another user when the owner is deleted); which connections use it,
-- and whether it is main for each, lives in `credential_connections`.
CREATE TABLE credential_connections (
    credential_id   BIGINT NOT NULL,
    connection_id   BIGINT NOT NULL,
    is_main         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (credential_id, connection_id)
);
INSERT INTO credential_connections (credential_id, connection_id, is_main, created_at)
SELECT id, connection_id, is_main, created_at FROM credentials;

ALTER TABLE credentials ADD COLUMN partner_id BIGINT;
UPDATE credentials SET partner_id = c.partner_id FROM connections c WHERE c.id = credentials.connection_id;
