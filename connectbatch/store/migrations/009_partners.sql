-- Partners as first-class (issue 11): every connection belongs to one partner, and an
-- outbound connection exports only its partner's data. `name_key` (lower-case name) keeps
-- names unique case-insensitively.
CREATE SEQUENCE IF NOT EXISTS seq_partners;
CREATE TABLE partners (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_partners'),
    name            VARCHAR NOT NULL,
    name_key        VARCHAR NOT NULL UNIQUE,     -- lower(name)
    type            VARCHAR NOT NULL,            -- vendor | publisher | agency | brand
    contacts        VARCHAR,
    return_email    VARCHAR,
    notes           VARCHAR,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

ALTER TABLE connections ADD COLUMN partner_id BIGINT;
ALTER TABLE connections ADD COLUMN export_sources JSON;   -- outbound: inbound connection ids

-- Existing connections each move to a partner named after the connection (type brand: the
-- advertiser whose data a connection carries is the usual case; `partner edit` corrects it).
-- Names differing only in case get the connection id appended, so partner names stay unique.
CREATE TEMP TABLE _partner_of AS
SELECT id AS connection_id,
       CASE WHEN row_number() OVER (PARTITION BY lower(name) ORDER BY id) = 1 THEN name
            ELSE name || ' (' || CAST(id AS VARCHAR) || ')' END AS partner_name,
       return_email
FROM connections;
INSERT INTO partners (name, name_key, type, return_email)
SELECT partner_name, lower(partner_name), 'brand', return_email FROM _partner_of ORDER BY connection_id;
UPDATE connections SET partner_id = p.id
FROM _partner_of m JOIN partners p ON p.name = m.partner_name
WHERE connections.id = m.connection_id;
DROP TABLE _partner_of;

-- The export ledger: one row per export file written for an outbound connection.
CREATE SEQUENCE IF NOT EXISTS seq_exports;
CREATE TABLE exports (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_exports'),
    connection_id   BIGINT NOT NULL,
    trigger         VARCHAR NOT NULL,            -- manual | cli | schedule | window
    file_name       VARCHAR,
    rows            BIGINT NOT NULL,
    new_rows        BIGINT NOT NULL DEFAULT 0,
    changes         BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- The persisted export watermark: per outbound connection, what has been exported already:
-- loaded files (kind 'file', item = files.id) and action status changes (kind 'change',
-- item = action_audit.id). A set rather than one position: runs commit out of id order (a
-- held batch is released days later, two connections load at once), and a set skips nothing.
CREATE TABLE export_watermarks (
    connection_id   BIGINT NOT NULL,             -- the outbound connection
    kind            VARCHAR NOT NULL,            -- file | change
    item_id         BIGINT NOT NULL,
    export_id       BIGINT NOT NULL,
    PRIMARY KEY (connection_id, kind, item_id)
);
