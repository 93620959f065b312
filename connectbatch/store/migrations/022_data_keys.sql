-- Issue 13: the key index (store/keys.py). Which record keys (a data type's first key column)
-- each connection has loaded, as 64-bit hashes with the file that holds them: the "already
-- loaded" check and the repeats of a merging load scan these 8-byte hashes instead of every
-- row the connection ever loaded, and read stored rows only of the files a hash points at.
-- Rows are never deleted, so neither is an entry. Written in each load's own transaction.
CREATE TABLE data_keys (
    data_type      VARCHAR NOT NULL,
    connection_id  BIGINT NOT NULL,
    key_hash       UBIGINT NOT NULL,   -- hash(CAST(key AS VARCHAR)), by data_keys_filled.hashed_by
    file_id        BIGINT NOT NULL
);

-- The data types whose stored rows are all in it, and which DuckDB hashed them: built at the
-- first open after this migration (the data tables are created after the migrations), and
-- again after a DuckDB upgrade, since hash() may change between versions (store/keys.py).
CREATE TABLE data_keys_filled (
    data_type  VARCHAR PRIMARY KEY,
    hashed_by  VARCHAR NOT NULL,
    filled_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
