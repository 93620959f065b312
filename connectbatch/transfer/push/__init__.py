"""Our hosted servers partners push to (and collect "Pull from us" files from): `sftp/` and
`ftp/` (FTP and explicit FTPS), one package each; `gateway` is all they need from the rest of
ConnectBatch, and `connectbatch.transfer.naming` decides which uploads are still in flight.
Both servers share `budget` (how often a message is logged), `sessions` (logged-in sessions
per login), `quota` (bytes waiting per push folder), `partials` (the sweep of leftovers),
`writers` (files open for writing, which the gateway never loads nor removes) and `routing`
(which connection of a shared login an upload is for)."""
