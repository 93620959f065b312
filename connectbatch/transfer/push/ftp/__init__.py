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
* `listener` — the listening socket: accepting outlasts running out of file descriptors, and a
  full server closes its oldest connection not logged in to make room for a new one.
* `guard` — per-address limits on not-yet-logged-in connections (and the oldest of them all,
  for a full server), failed-login throttling, rate-limited logging (and, in `session`, the
  sessions per login: `push.sessions`).
* `loop` — what the sessions of one server share, and the way back onto the IO loop for work
  done in other threads (password checks, stop requests).
* `session` — one control connection: the password checked off the IO loop (the same 530 for
  a wrong user and a wrong password, timed from the PASS so the check's own length does not
  show; dropped after three failures, never logged), paths with control characters refused
  (501), and upload
  completion (a finished STOR or a rename from an in-flight name goes to the gateway; the
  226/250 reply only after that, so a client that saw it can rely on the ingest having started).
* `authorizer` — the per-session permissions from the account ("elr" read-only,
  "elradfmw" push; SITE CHMOD and MFMT not offered at all).
* `filesystem` — confinement: every operation's resolved path is checked, writes never follow
  a symlink, link targets are never shown; no path or listed name with a control character.
* `passive` — whose is a connection to a passive data port: under TLS, the one that resumes
  the control connection's TLS session (or, for clients that never resume, a new session
  after the transfer command); a stray or foreign connection is closed and the port waits on.
* `data_channel` — the size limit and the push folder's quota (552 and the partial file
  deleted) and the held-back reply.
* `tls` — the FTPS session and data channel (PROT C refused while TLS is required: 534).
"""

from connectbatch.transfer.push.ftp.authorizer import GatewayAuthorizer
from connectbatch.transfer.push.ftp.certificate import server_fingerprint
from connectbatch.transfer.push.ftp.server import HostedFtpServer
from connectbatch.transfer.push.partials import sweep_partials

__all__ = ["GatewayAuthorizer", "HostedFtpServer", "server_fingerprint", "sweep_partials"]
