-- SFTP host keys are pinned per server (host and port), not per credential: a new credential
-- (rotation) must not bring its own, empty, pin and so trust whatever key the server shows.
-- `presented_*` keeps the last different key a server showed, for a person to check and
-- accept by typing its fingerprint.
CREATE TABLE host_keys (
    host                  VARCHAR NOT NULL,      -- lower-case host name as configured
    port                  INTEGER NOT NULL,      -- 22 when the connection names none
    host_key              VARCHAR,               -- pinned "<type> <base64>"; NULL = none yet
    fingerprint           VARCHAR,               -- SHA256:... of host_key
    pinned_at             TIMESTAMPTZ,
    presented_key         VARCHAR,               -- a different key the server last showed
    presented_fingerprint VARCHAR,
    presented_at          TIMESTAMPTZ,
    PRIMARY KEY (host, port)
);

-- Existing pins move to their server; the main credential's pin wins over older ones.
INSERT OR IGNORE INTO host_keys (host, port, host_key, pinned_at)
SELECT lower(trim(c.host)), coalesce(c.port, 22), k.host_key, k.updated_at
FROM credentials k JOIN connections c ON c.id = k.connection_id
WHERE k.host_key IS NOT NULL AND c.method = 'sftp' AND coalesce(trim(c.host), '') <> ''
ORDER BY k.is_main DESC, k.id DESC;

UPDATE credentials SET host_key = NULL WHERE host_key IS NOT NULL;
