"""Pull files from a partner's SFTP server (paramiko), registered as method ``"sftp"``.

What this package adds on top of paramiko, and where:

* **Host-key pinning** (`keys`, checked in `transport`). The first connection accepts the
  server's key and exposes it (`host_key`, `host_key_fingerprint`) so the caller can store it
  (`login.open_pinned` pins it per server, host and port, never per credential);
  afterwards a different key fails the connection *before* any credential is sent
  (`HostKeyChangedError`, carrying the presented key) until a person accepts the new key by
  its fingerprint. When a key is pinned we ask the
  server for that key type first, as OpenSSH does with known_hosts, so a server holding several
  host keys is not mistaken for a changed one.
* **Private keys** (`keys.load_private_key`): every format OpenSSH writes, with exact messages
  for a missing or wrong passphrase.
* **Fast downloads** (`download`). paramiko's `get()` runs at roughly half the speed of
  OpenSSH's `sftp` on a fast link. The measured causes (issue 5) are per-packet Python work and
  Nagle's algorithm delaying our small read requests (paramiko never sets TCP_NODELAY). So we
  set TCP_NODELAY, prefer AES-GCM (no separate MAC pass), ask for 256 KiB SSH packets and a
  large window, and download with our own pipelined reader.
* **Any file name** (`listing`). A folder is read with its names as bytes, so a name that is
  not UTF-8 cannot stop the listing; it is fetched by those bytes.
* **Readable errors** (`transport`). Every paramiko/socket failure becomes a `TransportError`
  that says which host and port, what we were doing, and what went wrong in plain words.
  Passwords and passphrases never appear in messages.

Importing this package registers the transport (`transfer.base.open_transport`).
"""

from connectbatch.transfer.pull.sftp.keys import (
    HostKeyChangedError,
    fingerprint,
    load_private_key,
    parse_host_key,
)
from connectbatch.transfer.pull.sftp.transport import SftpTransport

__all__ = ["HostKeyChangedError", "SftpTransport", "fingerprint", "load_private_key", "parse_host_key"]
