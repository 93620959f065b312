-- Issue 13: a big file's accepted rows are stored as one Parquet part (store/parts.py), not
-- inserted into data_<type>. A part counts only once its row here is committed (in the load's
-- transaction); a file on disk without a row is an orphan that recovery deletes.
CREATE TABLE data_parts (
    file_id BIGINT NOT NULL,
    part INTEGER NOT NULL,
    data_type VARCHAR NOT NULL,
    path VARCHAR NOT NULL,            -- relative to the parts folder beside the database
    rows BIGINT NOT NULL,
    created_at TIMESTAMPTZ DEFAULT current_timestamp,
    PRIMARY KEY (file_id, part)
);

-- The row versions of rows stored in parts (a Parquet file is never rewritten): a row of a
-- part that a later file ended has its valid_to / superseded_by / end_reason here.
CREATE TABLE data_ends (
    file_id BIGINT NOT NULL,
    line BIGINT NOT NULL,
    valid_to TIMESTAMPTZ NOT NULL,
    superseded_by BIGINT,
    end_reason VARCHAR,
    PRIMARY KEY (file_id, line)
);
