-- Field mapping (issue 12): every saved mapping of a connection, versioned. The newest
-- version is the current one; `connections.column_map` is kept equal to its non-null lines
-- (the parser applies that). `mapping` is {"columns": {partner header: our column or null},
-- "constants": {our column: fixed value}}. Each run records the version it parsed with.
CREATE TABLE column_mappings (
    connection_id   BIGINT NOT NULL,
    version         INTEGER NOT NULL,
    mapping         JSON NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    created_by      VARCHAR,
    PRIMARY KEY (connection_id, version)
);

ALTER TABLE runs ADD COLUMN mapping_version INTEGER;
