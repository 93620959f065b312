-- Staged raw files removed by retention (CONNECTBATCH_STAGING_RETENTION_DAYS): what went,
-- when and why, so a later "the staged copy is gone" can be explained.
CREATE SEQUENCE seq_staging_removals START 1;
CREATE TABLE staging_removals (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_staging_removals'),
    sha256          VARCHAR NOT NULL,
    size            BIGINT NOT NULL,
    last_used_at    TIMESTAMPTZ NOT NULL,
    removed_at      TIMESTAMPTZ NOT NULL,
    reason          VARCHAR NOT NULL
);
