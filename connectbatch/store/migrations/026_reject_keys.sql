-- The key of each rejected row, as far as it could be read (the parser reads the key column
-- of a row it refuses for another column; a row refused after parsing is about its key).
-- The rejects kept only line, column, value and reason, so a status file (sync-back), the
-- CLI's rejects and the review screens could not say which record a row refused for, say,
-- its CallDuration was. NULL on rows from before, and where no key was readable.
ALTER TABLE rejects ADD COLUMN row_key VARCHAR;
