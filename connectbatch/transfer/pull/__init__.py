"""Pulls from partners' servers: `collect` runs one pull for a connection over the transport
its method names (`sftp`, `ftp`, `imap`)."""
