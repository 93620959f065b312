-- Typed transfer settings per method (connectbatch/transfer/specs.py), stored as JSON so a
-- new setting needs no migration; the credential's auth kind (password | key) as chosen by the
-- person, and an encrypted passphrase for an encrypted private key.
ALTER TABLE connections ADD COLUMN transfer JSON;
ALTER TABLE credentials ADD COLUMN auth VARCHAR;
ALTER TABLE credentials ADD COLUMN passphrase BLOB;
