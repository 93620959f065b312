-- New FTP connections default to explicit TLS (transfer/specs.py FtpSpec). Connections stored
-- before typed settings existed pulled over plain FTP: keep them so until a person changes it.
UPDATE connections SET transfer = '{"tls": "none"}' WHERE method = 'ftp' AND transfer IS NULL;
