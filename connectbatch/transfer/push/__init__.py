"""Our hosted servers partners push to (and collect "Pull from us" files from): SFTP and
FTP(S); `gateway` is all they need from the rest of ConnectBatch."""
