-- Re-delivered records and catalog versions (issue 11).
-- connections.redelivery: new_keys_only (a file repeating loaded keys is held for review, as
-- before) | supersede (a corrected record replaces the stored one and its still-pending action).
-- connections.catalog_mode: updates (only listed items change) | snapshot (the file is the whole
-- catalog: items it leaves out are marked removed).
ALTER TABLE connections ADD COLUMN redelivery VARCHAR DEFAULT 'new_keys_only';
ALTER TABLE connections ADD COLUMN catalog_mode VARCHAR DEFAULT 'updates';
-- What a run did with records it repeated. (The data_<type> tables gain valid_to /
-- superseded_by / end_reason in store/db.py, which creates those tables from the registry.)
ALTER TABLE runs ADD COLUMN rows_unchanged BIGINT DEFAULT 0;
ALTER TABLE runs ADD COLUMN rows_replaced BIGINT DEFAULT 0;
ALTER TABLE runs ADD COLUMN rows_removed BIGINT DEFAULT 0;
