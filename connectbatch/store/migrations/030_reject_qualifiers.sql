-- The qualifier of each rejected row's key, as far as it could be read: its VendorEventId, which
-- event of the call (call conversions are keyed on CallSessionId with VendorEventId). A status
-- file (sync-back) named a rejected sale by its CallSessionId alone, which reads as the call
-- event. NULL on rows from before, for data types without a qualifier, and where none was read.
ALTER TABLE rejects ADD COLUMN row_qualifier VARCHAR;
