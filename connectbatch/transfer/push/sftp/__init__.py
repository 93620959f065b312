"""Our hosted SFTP server ("Push to us" uploads, "Pull from us" downloads), built on paramiko.

Partners log in with the username and password provisioned for their connection, or with a
public key added to that login (`connectbatch credentials add-key`). The server
only speaks SFTP; who a login is, where it may go and what happens to a finished upload are
the gateway's business (`connectbatch.transfer.push.gateway`).

The modules, in the order a session meets them:

* `server` — **listening and sessions.** Each client runs in its own thread with a tuned
  paramiko transport; everything a session raises is caught and logged there, so a misbehaving
  client can only end its own session. The number of sessions is capped (see `guard`).
  `host_key` keeps the host key across restarts (Ed25519, RSA 3072 as a fallback, mode 0600),
  so partners' pinned keys stay valid; a provisioned login prints its fingerprint. CBC
  ciphers and MD5 and truncated (-96) MACs are not offered.
* `guard` — **one address cannot lock partners out.** Connection slots per address and in
  total (a new connection displaces the oldest one not yet logged in, never a session), a
  pre-auth timeout for banner, handshake and login together, failed passwords counted per
  address, and a log a flood cannot fill (per-kind rate limit, no traceback per connection).
  **Nor can one login**: it holds at most a few sessions at once (`push.sessions`, see `login`),
  and at most 64 open files across all of them (`OpenFiles`: each is a descriptor of ours).
  An address refused for failed passwords is told so, and for how long.
* `login` — **login hygiene.** Passwords (`gateway.authenticate`) or the login's authorized
  public keys (`gateway.authenticate_key`), for SFTP connections only. Every password failure
  takes the same time whether the user exists or not (padded to a fixed floor); after three
  failures the connection is closed. Passwords are never logged. One session too many for
  its login is refused with a banner and a disconnect saying why. Channels per session are
  capped; `exec` (legacy `scp -O`) gets a clear refusal on stderr and exit status 1.
* `channel` — **the SFTP loop, made fast.** Requests are parsed out of large channel reads,
  WRITE and READ are served straight from that buffer with `os.pwrite`/`os.pread` on a raw
  descriptor, and replies are sent in one SSH packet per batch (always before waiting for
  more input). With TCP_NODELAY, a large window and 256 KiB packets (see `server`): measured
  with paramiko's `put()` of 100 MiB on loopback (2 CPUs, noisy): all of it 165-265 MB/s; the
  same minus TCP_NODELAY 77, with 32 KiB packets 168, with a 2 MiB window 166; paramiko's stock
  SFTP loop on the tuned transport 69-126; stock paramiko throughout 37-45. OpenSSH's sshd
  takes ~100-116 MB/s from the same client (bench/bench_sftp_push.py).
* `filesystem` — **confinement.** Every client path is relative to the account's home, seen
  as `/`; `..` out, NUL bytes and symlinks leading outside are refused, and listings hide
  them. Clients cannot create symlinks. **Read-only outbound logins** may list, stat and
  download; every write, rename, remove, mkdir, rmdir and setstat is refused.
* `handle` — **uploads.** Closing a file opened for writing tells the gateway
  (`upload_complete`), unless its name is still in flight (`connectbatch.transfer.naming`):
  then the rename to a final name does. A file renamed while still open is reported when it is
  closed; a session that breaks off mid-upload reports nothing (the partial file stays, not
  ingested). A write past `account.max_file_bytes`, or the push folder's quota
  (`push.quota`), or any failed write (e.g. a full disk), fails with a message saying so and
  removes the partial file; closing it fails too. So does a write past the end of the file
  (a sparse file, copied in full by staging, outside the quota); a size set by SETSTAT may
  shrink a file, never grow it.
* `protocol` — the SFTP constants, refusals and STATUS replies the others share.

paramiko's private internals the loop relies on are listed, and checked against the installed
paramiko, in `tests/unit/test_paramiko_contract.py`.
"""

from connectbatch.transfer.push.sftp.host_key import (
    host_key_fingerprint,
    host_key_path,
    load_or_create_host_key,
)
from connectbatch.transfer.push.sftp.login import AccountGateway
from connectbatch.transfer.push.sftp.server import HostedSftpServer

__all__ = [
    "AccountGateway",
    "HostedSftpServer",
    "host_key_fingerprint",
    "host_key_path",
    "load_or_create_host_key",
]
