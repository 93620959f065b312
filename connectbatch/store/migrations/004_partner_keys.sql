-- A provisioned SFTP login's authorized public keys: OpenSSH lines ("ssh-ed25519 AAAA... comment"),
-- one per line, each of which logs the partner in instead of the password (`credentials add-key`).
ALTER TABLE credentials ADD COLUMN public_keys VARCHAR;
