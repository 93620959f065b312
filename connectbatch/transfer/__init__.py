"""Moving files: `pull/` logs in to a partner's SFTP, FTP(S) or IMAP server on a schedule;
`push/` hosts our own SFTP and FTP(S) servers that partners upload to. `base` holds what both
share: the endpoint a connection names, the remote-file record, the wildcard rule."""
