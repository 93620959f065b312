"""Our hosted FTP / explicit-FTPS server: "Push to us" uploads and "Pull from us" downloads.

pyftpdlib speaks the protocol; everything ConnectBatch-specific comes from the `Gateway`:
who a login is (`authenticate`), which folder it is confined to and whether it may write
(`Account.home`, `writable`), how large an upload may grow (`max_file_bytes`), and what to
do with a finished upload (`upload_complete`, which ingests in a worker thread).

The modules, in the order a session meets them:

* `server` — binds, serves pyftpdlib's IO loop from a daemon thread; always offers explicit
  FTPS and by default requires AUTH TLS before login and PROT P before any transfer; sweeps
  partial files of broken uploads after the grace period.
* `certificate` — the configured certificate or a generated self-signed one, and its SHA-256
  fingerprint (`server_fingerprint(settings)`) for partners to pin.
* `guard` — per-address limits on not-yet-logged-in connections, failed-login throttling,
  rate-limited logging (and, in `session`, the sessions per login: `push.sessions`).
* `loop` — what the sessions of one server share, and the way back onto the IO loop for work
  done in other threads (password checks, stop requests).
* `session` — one control connection: the password checked off the IO loop (same fixed 530 for
  a wrong user and a wrong password, dropped after three failures, never logged), and upload
  completion (a finished STOR or a rename from an in-flight name goes to the gateway; the
  226/250 reply only after that, so a client that saw it can rely on the ingest having started).
* `authorizer` — the per-session permissions from the account ("elr" read-only,
  "elradfmw" push; SITE CHMOD and MFMT not offered at all).
* `filesystem` — confinement: every operation's resolved path is checked, writes never follow
  a symlink, link targets are never shown.
* `data_channel` — the size limit and the push folder's quota (552 and the partial file
  deleted) and the held-back reply.
"""

from connectbatch.transfer.push.ftp.authorizer import GatewayAuthorizer
from connectbatch.transfer.push.ftp.certificate import server_fingerprint
from connectbatch.transfer.push.ftp.server import HostedFtpServer
from connectbatch.transfer.push.partials import sweep_partials

__all__ = ["GatewayAuthorizer", "HostedFtpServer", "server_fingerprint", "sweep_partials"]
