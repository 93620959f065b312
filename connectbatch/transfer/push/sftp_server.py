"""Our hosted SFTP server ("Push to us" uploads, "Pull from us" downloads), built on paramiko.

Partners log in with the username and password provisioned for their connection. The server
only speaks SFTP; who a login is, where it may go and what happens to a finished upload are
the gateway's business (`connectbatch.transfer.push.gateway`).

What this module adds on top of paramiko's server classes, and why:

* **Confinement.** Every path a client sends is taken relative to the account's home, which
  the client sees as `/`. A path that climbs out with `..`, contains a NUL byte, or (after
  `os.path.realpath`) leads outside the home through a symlink is refused with "permission
  denied"; listings hide entries that lead outside. Clients cannot create symlinks, so only a
  link someone planted on the host could lead out, and that is caught by the realpath check.
* **Read-only outbound logins.** "Pull from us" accounts may list, stat and download; every
  write, rename, remove, mkdir, rmdir and setstat is refused.
* **Uploads ingested when complete.** Closing a file opened for writing tells the gateway
  (`upload_complete`), unless its name ends in `.part`/`.tmp`/`.filepart`: then the rename to
  a final name does. A file renamed while still open is reported when it is closed. A session
  that breaks off mid-upload reports nothing (the partial file stays, not ingested).
* **A size limit per file.** A write that would take a file past `account.max_file_bytes`
  fails with a message saying so, and the partial file is removed (as after any failed write,
  e.g. a full disk: a file with a hole in it must never be ingested). Closing it fails too.
* **Speed.** paramiko's stock SFTP server reads every request with two small channel reads,
  builds a `Message` per request, writes through a buffered Python file (seek, write, flush)
  and sends every reply as its own SSH packet. Here, requests are parsed out of large channel
  reads, WRITE and READ are served straight from that buffer with `os.pwrite`/`os.pread` on a
  raw descriptor, and replies are collected and sent in one SSH packet per batch (always before
  waiting for more input, so a client never waits on a held-back reply). The socket has
  TCP_NODELAY (paramiko never sets it; without it small replies wait for delayed ACKs), the
  channel window is large and the maximum packet size is 256 KiB, so a client's 32 KiB write
  fits in one SSH packet instead of being split in two (paramiko's default maximum is exactly
  32 KiB, a few bytes short of a write request). Measured with paramiko's `put()` of 100 MiB
  on loopback (2 CPUs, noisy): all of the above 165-265 MB/s; the same minus TCP_NODELAY 77,
  with 32 KiB packets 168, with a 2 MiB window 166; paramiko's stock SFTP loop on the tuned
  transport 69-126; stock paramiko throughout 37-45. OpenSSH's sshd takes ~100-116 MB/s from
  the same client (bench/bench_sftp_push.py).
* **Login hygiene.** Password logins only, through `gateway.authenticate`. Every failure takes
  the same time whether the user exists or not (padded to a fixed floor); after three failures
  the connection is closed; a connection that has not logged in within the grace time is
  closed. Passwords are never logged.
* **Robust.** Each client runs in its own thread; everything a session raises is caught and
  logged there, so a misbehaving client can only end its own session. The number of sessions,
  channels per session and open files per channel are capped.

The host key is generated on first start (Ed25519, written in OpenSSH format with
`cryptography`, which paramiko reads but cannot write; RSA 3072 if that fails), kept at
`host_key_path` with mode 0600 and reused afterwards, so partners' pinned keys stay valid.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import socket
import stat
import struct
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import paramiko
from paramiko import sftp as _sftp

from connectbatch.transfer.pull.sftp import fingerprint
from connectbatch.transfer.push.gateway import IN_FLIGHT_SUFFIXES, Account

# paramiko is untyped: its protocol constants, typed once here.
CMD_CLOSE: int = _sftp.CMD_CLOSE
CMD_DATA: int = _sftp.CMD_DATA
CMD_INIT: int = _sftp.CMD_INIT
CMD_READ: int = _sftp.CMD_READ
CMD_STATUS: int = _sftp.CMD_STATUS
CMD_VERSION: int = _sftp.CMD_VERSION
CMD_WRITE: int = _sftp.CMD_WRITE
SFTP_OK: int = _sftp.SFTP_OK
SFTP_EOF: int = _sftp.SFTP_EOF
SFTP_NO_SUCH_FILE: int = _sftp.SFTP_NO_SUCH_FILE
SFTP_PERMISSION_DENIED: int = _sftp.SFTP_PERMISSION_DENIED
SFTP_FAILURE: int = _sftp.SFTP_FAILURE
SFTP_BAD_MESSAGE: int = _sftp.SFTP_BAD_MESSAGE
SFTP_OP_UNSUPPORTED: int = _sftp.SFTP_OP_UNSUPPORTED
SFTP_DESC: list[str] = list(_sftp.SFTP_DESC)
AUTH_SUCCESSFUL: int = paramiko.AUTH_SUCCESSFUL
AUTH_FAILED: int = paramiko.AUTH_FAILED
OPEN_SUCCEEDED: int = paramiko.OPEN_SUCCEEDED
OPEN_REFUSED: int = paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

log = logging.getLogger("connectbatch.transfer.push.sftp")
# paramiko logs every client that hangs up abruptly ("Socket exception: Connection reset by
# peer"), every failed handshake (port scanners, health checks) with a traceback, at ERROR.
# For a server those are one client's business, which our own log already records, not errors
# of ours: its log goes under ours, at most at INFO. The NullHandler keeps Python's last-resort
# handler from printing it to stderr where no logging is configured.
PARAMIKO_LOG = f"{log.name}.paramiko"


class _AtMostInfo(logging.Filter):
    """Lower paramiko's per-client ERROR/WARNING records to INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


logging.getLogger(PARAMIKO_LOG).addHandler(logging.NullHandler())
logging.getLogger(PARAMIKO_LOG).addFilter(_AtMostInfo())

# --- tuning (see the module docstring and bench/bench_sftp_push.py) ------------------------------
WINDOW_SIZE = 16 * 1024 * 1024  # far above what a client keeps in flight: it never waits for us
MAX_PACKET_SIZE = 256 * 1024  # a 32 KiB write request (+ header) fits in one SSH packet
RECV_SIZE = 4 * 1024 * 1024  # take everything the channel has buffered in one call
FLUSH_BYTES = 1024 * 1024  # send collected replies once they reach this size (large downloads)
MAX_READ_SIZE = 256 * 1024 - 1024  # what OpenSSH's sftp-server answers at most per READ
MAX_REQUEST_BYTES = 1024 * 1024 + 1024  # a larger SFTP packet is a broken or hostile client
# --- limits --------------------------------------------------------------------------------------
MAX_AUTH_FAILURES = 3
AUTH_FAILURE_SECONDS = 0.5  # every failed login takes this long: scrypt (~60 ms) or not
LOGIN_GRACE_SECONDS = 60.0
KEEPALIVE_SECONDS = 30
MAX_SESSIONS = 128
MAX_CHANNELS_PER_SESSION = 4
MAX_OPEN_FILES = 64  # per SFTP channel
NEW_FILE_MODE = 0o640
NEW_DIR_MODE = 0o750
SFTP_VERSION = 3

_STATUS_HEADER = struct.Struct(">IBII")  # length, CMD_STATUS, request id, code
_DATA_HEADER = struct.Struct(">IBII")  # length, CMD_DATA, request id, data length
_U32 = struct.Struct(">I")
_WRITE_ARGS = struct.Struct(">QI")  # offset, data length
_READ_ARGS = struct.Struct(">QI")  # offset, length


class AccountGateway(Protocol):
    """What the server needs from the rest of ConnectBatch (`gateway.Gateway` provides it)."""

    def authenticate(self, username: str, password: str) -> Account | None: ...

    def upload_complete(self, account: Account, path: Path) -> object: ...


class _Refused(Exception):
    """A client request we turn down; carries the SFTP status code and a message for it."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or SFTP_DESC[code])
        self.code = code
        self.message = message or SFTP_DESC[code]


_DENIED = "permission denied"


def _denied(why: str = _DENIED) -> _Refused:
    return _Refused(SFTP_PERMISSION_DENIED, why)


def _too_large(limit: int) -> _Refused:
    return _Refused(SFTP_FAILURE, f"file too large: the limit is {limit} bytes per file")


def _status_packet(request_id: int, code: int, message: str | None = None) -> bytes:
    """An SFTP STATUS reply, built without paramiko's Message (one per WRITE: it adds up)."""
    text = (message if message is not None else SFTP_DESC[code]).encode("utf-8", "replace")
    tail = _U32.pack(len(text)) + text + _U32.pack(0)  # message, empty language tag
    return _STATUS_HEADER.pack(1 + 4 + 4 + len(tail), CMD_STATUS, request_id, code) + tail


def _code_of(exc: OSError) -> int:
    """The SFTP status code for an OS error (paramiko's mapping, plus EPERM as denied)."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SFTP_PERMISSION_DENIED
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return SFTP_NO_SUCH_FILE
    return SFTP_FAILURE


def _message_of(exc: OSError) -> str:
    """An OS error in plain words for the client, without host paths."""
    return (exc.strerror or SFTP_DESC[_code_of(exc)]).lower()


def is_in_flight(name: str) -> bool:
    """Whether a file name says its upload is not finished (`.part`, `.tmp`, `.filepart`)."""
    return name.lower().endswith(IN_FLIGHT_SUFFIXES)


# --- host key --------------------------------------------------------------------------------------


def load_or_create_host_key(path: Path) -> paramiko.PKey:
    """The server's host key from `path`, created there on first use.

    Kept across restarts because partners pin it: a new key would make their clients refuse
    us. Ed25519 (small, fast, every current client supports it) is written by `cryptography` in
    OpenSSH format, since paramiko can read but not write Ed25519 keys; RSA 3072 if that fails.
    The file is created 0600 and tightened to 0600 if someone loosened it."""
    path = Path(path)
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("host key %s was readable by others (mode %o): setting it to 0600", path, mode)
            path.chmod(0o600)
        return _read_host_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        _write_private(path, pem)
        return _read_host_key(path)
    except Exception:  # an old cryptography or paramiko without Ed25519: RSA works everywhere
        log.warning("could not create an Ed25519 host key; using RSA 3072", exc_info=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        rsa = paramiko.RSAKey.generate(3072)
        temporary = path.with_name(path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(descriptor)
        rsa.write_private_key_file(str(temporary))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        return rsa


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically: never world-readable, never half-written."""
    temporary = path.with_name(path.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def _read_host_key(path: Path) -> paramiko.PKey:
    text = path.read_text()
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind(filename=str(path))
        except (paramiko.SSHException, ValueError):
            continue
    raise paramiko.SSHException(f"{path} does not hold a private key paramiko can read ({text[:35]!r})")


# --- login -----------------------------------------------------------------------------------------


class _Login(paramiko.ServerInterface):  # type: ignore[misc]
    """One client connection's view of authentication and channel requests."""

    def __init__(self, server: HostedSftpServer, peer: str) -> None:
        self.server = server
        self.peer = peer
        self.account: Account | None = None
        self.failures = 0
        self.locked_out = threading.Event()
        self.channels: list[Any] = []
        self._lock = threading.Lock()

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_none(self, username: str) -> int:
        return AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        """Ask the gateway; pad every failure to the same duration, close after three."""
        started = time.monotonic()
        if self.failures >= MAX_AUTH_FAILURES or self.account is not None:
            return AUTH_FAILED
        account: Account | None = None
        try:
            account = self.server.gateway.authenticate(username, password)
        except Exception:  # a store error is a failed login, never a crashed session
            log.exception("login check failed for user %r from %s", username, self.peer)
        if account is not None:
            self.account = account
            log.info(
                "login %r from %s (connection %s, %s)",
                username,
                self.peer,
                account.connection_id,
                "read/write" if account.writable else "read-only",
            )
            return AUTH_SUCCESSFUL
        # Unknown users fail in microseconds, wrong passwords after a scrypt check (~60 ms):
        # sleeping every failure to the same floor keeps timing from telling which users exist.
        remaining = AUTH_FAILURE_SECONDS - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        self.failures += 1
        log.warning(
            "failed login %d/%d for user %r from %s", self.failures, MAX_AUTH_FAILURES, username, self.peer
        )
        if self.failures >= MAX_AUTH_FAILURES:
            self.locked_out.set()
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session" and self.account is not None:
            return OPEN_SUCCEEDED
        return OPEN_REFUSED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        """Only SFTP, only after login, at most a few channels at a time per connection."""
        if name != "sftp" or self.account is None:
            return False
        with self._lock:
            self.channels = [c for c in self.channels if not c.closed]
            if len(self.channels) >= MAX_CHANNELS_PER_SESSION:
                log.warning("refused another SFTP channel for %s: too many open", self.peer)
                return False
            self.channels.append(channel)
        return bool(super().check_channel_subsystem_request(channel, name))


# --- the file system a login sees ----------------------------------------------------------------


class _File(paramiko.SFTPHandle):  # type: ignore[misc]
    """An open file: a raw descriptor served with pread/pwrite (no Python buffering)."""

    def __init__(self, fs: _ConfinedFs, fd: int, flags: int, entry: str, writing: bool, size: int) -> None:
        super().__init__(flags)
        self.fs = fs
        self.fd: int | None = fd
        self.entry = entry  # host path (real parent + name) as opened or last renamed to
        self.writing = writing
        self.append = bool(flags & os.O_APPEND)
        self.size = size  # the file's size as far as our writes know (the limit applies to it)
        self.failed = False
        self.failure = ""

    # Fast paths, called by _SftpChannel for READ and WRITE.

    def read_at(self, offset: int, length: int) -> bytes:
        if self.fd is None:
            raise _Refused(SFTP_FAILURE, "file is closed")
        return os.pread(self.fd, min(length, MAX_READ_SIZE), offset)

    def write_at(self, offset: int, data: memoryview) -> None:
        if self.failed:
            raise _Refused(SFTP_FAILURE, f"upload failed: {self.failure}")
        if self.fd is None:
            raise _Refused(SFTP_FAILURE, "file is closed")
        if not self.writing:
            raise _denied("file was not opened for writing")
        length = len(data)
        end = (self.size if self.append else offset) + length
        limit = self.fs.account.max_file_bytes
        if end > limit:
            self._fail(f"larger than the limit of {limit} bytes")
            raise _too_large(limit)
        written = 0
        try:
            while written < length:  # a regular file takes it all at once unless the disk is full
                done = os.pwrite(self.fd, data[written:] if written else data, offset + written)
                if done <= 0:
                    raise OSError(errno.EIO, "short write")
                written += done
        except OSError as exc:  # e.g. disk full: a file with a hole must never be ingested
            self._fail(f"write failed: {exc.strerror or exc}")
            raise
        if end > self.size:
            self.size = end

    def _fail(self, why: str) -> None:
        """The upload cannot succeed: close and remove the partial file; it is not reported
        to the gateway, and every later write or close of this handle fails."""
        self.failed = True
        self._close_fd()
        with contextlib.suppress(OSError):
            os.unlink(self.entry)
        self.fs.forget(self)
        log.warning(
            "upload of %s by %r refused: %s; partial file removed",
            self.fs.virtual(self.entry),
            self.fs.account.username,
            why,
        )
        self.failure = why

    def _close_fd(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    # paramiko's SFTPHandle interface (also used by the check-file extension).

    def read(self, offset: int, length: int) -> bytes | int:
        try:
            return self.read_at(offset, length)
        except _Refused as exc:
            return exc.code
        except OSError as exc:
            return _code_of(exc)

    def write(self, offset: int, data: bytes) -> int:
        try:
            with memoryview(data) as view:
                self.write_at(offset, view)
        except _Refused as exc:
            return exc.code
        except OSError as exc:
            return _code_of(exc)
        return SFTP_OK

    def stat(self) -> paramiko.SFTPAttributes | int:
        if self.fd is None:
            return SFTP_FAILURE
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))
        except OSError as exc:
            return _code_of(exc)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        if not self.fs.account.writable:
            return SFTP_PERMISSION_DENIED
        return self.fs.apply_times(self.entry, attr)

    def close(self) -> None:
        """The client closed the file: a finished upload goes to the gateway; a failed one
        raises its error again."""
        if self.failed:
            raise _Refused(SFTP_FAILURE, f"upload failed: {self.failure}")
        if self.fd is None:
            return
        self._close_fd()
        self.fs.forget(self)
        if self.writing and not self.failed:
            self.fs.uploaded(self.entry)

    def abort(self) -> None:
        """The session ended with the file still open: an interrupted upload, not ingested."""
        if self.fd is None:
            return
        self._close_fd()
        self.fs.forget(self)
        if self.writing and not self.failed:
            log.warning(
                "upload of %s by %r was interrupted (connection closed while the file was open)",
                self.fs.virtual(self.entry),
                self.fs.account.username,
            )


class _ConfinedFs(paramiko.SFTPServerInterface):  # type: ignore[misc]
    """The file system one SFTP channel sees: the account's home as `/`, nothing else."""

    def __init__(self, login: _Login, *args: Any, **kwargs: Any) -> None:
        super().__init__(login, *args, **kwargs)
        if login.account is None:  # never: channels are refused before login
            raise paramiko.SSHException("SFTP requested before login")
        self.login = login
        self.account: Account = login.account
        self.gateway = login.server.gateway
        self.root = os.path.realpath(self.account.home)
        self.open_files: set[_File] = set()

    # --- paths -----------------------------------------------------------------------------------

    def _parts(self, path: str) -> list[str]:
        """The client's path as components below the virtual root; refuses escapes and NULs."""
        if "\x00" in path:
            raise _denied()
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise _denied()
                parts.pop()
            else:
                parts.append(part)
        return parts

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def _entry(self, path: str) -> str:
        """Host path of the entry the client names: its parent fully resolved (and inside the
        home), its own name kept as is, so that remove/rename act on a link, not its target.
        An entry that is itself a link leading outside is refused too."""
        parts = self._parts(path)
        if not parts:
            return self.root
        parent = os.path.realpath(os.path.join(self.root, *parts[:-1]))
        if not self._inside(parent):
            raise _denied()
        entry = os.path.join(parent, parts[-1])
        if not self._inside(os.path.realpath(entry)):
            raise _denied()
        return entry

    def _target(self, path: str) -> str:
        """Host path of what the client's path finally leads to (links followed), inside home."""
        real = os.path.realpath(os.path.join(self.root, *self._parts(path)))
        if not self._inside(real):
            raise _denied()
        return real

    def virtual(self, host_path: str) -> str:
        """How the client sees a host path inside the home (for logs and messages)."""
        relative = os.path.relpath(host_path, self.root)
        return "/" if relative == "." else "/" + relative.replace(os.sep, "/")

    def _writable(self) -> None:
        if not self.account.writable:
            raise _denied("this login is read-only")

    # --- SFTPServerInterface ---------------------------------------------------------------------

    def canonicalize(self, path: str) -> str:
        """REALPATH: the normalised virtual path; a path above `/` is shown as `/` (the answer
        is only a name, it grants nothing)."""
        if "\x00" in path:
            return "/"
        return posixpath.normpath("/" + path).replace("//", "/") or "/"

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        try:
            folder = self._target(path)
            entries: list[paramiko.SFTPAttributes] = []
            with os.scandir(folder) as listing:
                for item in listing:
                    try:
                        real = os.path.realpath(item.path)
                        if not self._inside(real):
                            continue  # a link out of the home: not shown at all
                        entries.append(paramiko.SFTPAttributes.from_stat(os.stat(real), item.name))
                    except OSError:
                        continue  # vanished meanwhile, or a dangling link
            return entries
        except _Refused as exc:
            return exc.code
        except OSError as exc:
            return _code_of(exc)

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            target = self._target(path)
            return paramiko.SFTPAttributes.from_stat(os.stat(target), posixpath.basename(path))
        except _Refused as exc:
            return exc.code
        except OSError as exc:
            return _code_of(exc)

    def lstat(self, path: str) -> paramiko.SFTPAttributes | int:
        """Like stat: links inside the home show as what they point to, links out are refused."""
        return self.stat(path)

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> _File | int:
        try:
            writing = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC))
            if writing:
                self._writable()
            if len(self.open_files) >= MAX_OPEN_FILES:
                raise _Refused(SFTP_FAILURE, f"too many open files (at most {MAX_OPEN_FILES})")
            entry = self._entry(path)
            if entry == self.root:
                raise _Refused(SFTP_FAILURE, "is a directory")
            target = os.path.realpath(entry)
            allowed = os.O_RDONLY | os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT
            allowed |= os.O_TRUNC | os.O_EXCL
            # O_NONBLOCK: opening a FIFO someone planted must not hang the session.
            fd = os.open(target, (flags & allowed) | os.O_CLOEXEC | os.O_NONBLOCK, NEW_FILE_MODE)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise _Refused(SFTP_FAILURE, "not a regular file")
            except BaseException:
                os.close(fd)
                raise
            handle = _File(self, fd, flags, target, writing, info.st_size)
            self.open_files.add(handle)
            return handle
        except _Refused as exc:
            return exc.code
        except OSError as exc:
            return _code_of(exc)

    def remove(self, path: str) -> int:
        return self._do(path, lambda entry: os.remove(entry))

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return self._do(path, lambda entry: os.mkdir(entry, NEW_DIR_MODE))

    def rmdir(self, path: str) -> int:
        return self._do(path, lambda entry: os.rmdir(entry))

    def _do(self, path: str, action: Any) -> int:
        try:
            self._writable()
            entry = self._entry(path)
            if entry == self.root:
                raise _denied()
            action(entry)
            return SFTP_OK
        except _Refused as exc:
            return exc.code
        except OSError as exc:
            return _code_of(exc)

    def rename(self, oldpath: str, newpath: str) -> int:
        """SFTP v3 rename: fails if the new name exists (as OpenSSH's server does)."""
        return self._rename(oldpath, newpath, replace=False)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """posix-rename@openssh.com: replaces an existing file, atomically."""
        return self._rename(oldpath, newpath, replace=True)

    def _rename(self, oldpath: str, newpath: str, *, replace: bool) -> int:
        try:
            self._writable()
            old, new = self._entry(oldpath), self._entry(newpath)
            if self.root in (old, new):
                raise _denied()
            if not replace and os.path.lexists(new):
                raise _Refused(SFTP_FAILURE, "a file with the new name already exists")
            os.rename(old, new)
        except _Refused as exc:
            return exc.code
        except OSError as exc:
            return _code_of(exc)
        still_open = [f for f in self.open_files if f.entry == old]
        for handle in still_open:  # reported when closed, under its new name
            handle.entry = new
        if not still_open and os.path.isfile(new) and not os.path.islink(new):
            self.uploaded(new)
        return SFTP_OK

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        """SETSTAT: modification times are applied, anything else (mode, owner, size) is
        accepted and ignored: clients send it after uploads and must not fail for it."""
        try:
            self._writable()
            return self.apply_times(self._target(path), attr)
        except _Refused as exc:
            return exc.code
        except OSError as exc:
            return _code_of(exc)

    def apply_times(self, host_path: str, attr: paramiko.SFTPAttributes) -> int:
        if attr._flags & attr.FLAG_AMTIME:
            try:
                os.utime(host_path, (attr.st_atime, attr.st_mtime))
            except OSError as exc:
                return _code_of(exc)
        return SFTP_OK

    def readlink(self, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    # --- uploads ---------------------------------------------------------------------------------

    def forget(self, handle: _File) -> None:
        self.open_files.discard(handle)

    def uploaded(self, entry: str) -> None:
        """A file is complete under a final name: hand it to the gateway (never fails the
        client's request: the bytes are safely on disk either way)."""
        if is_in_flight(os.path.basename(entry)):
            return
        log.info("upload complete: %s by %r", self.virtual(entry), self.account.username)
        try:
            self.gateway.upload_complete(self.account, Path(entry))
        except Exception:
            log.exception("could not hand %s to the gateway", self.virtual(entry))


# --- the SFTP protocol loop ----------------------------------------------------------------------


class _ProtocolError(Exception):
    """The client sent something that is not SFTP: the channel is closed."""


class _SftpChannel(paramiko.SFTPServer):  # type: ignore[misc]
    """paramiko's SFTP server with buffered input, coalesced output and fast READ/WRITE."""

    def __init__(
        self, channel: paramiko.Channel, name: str, server: _Login, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(channel, name, server, *args, **kwargs)
        self._in = bytearray()
        self._pos = 0
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._peer = server.peer
        server.server._track(self)

    # --- framing ---------------------------------------------------------------------------------

    def _fill(self) -> None:
        """Send what is waiting, then block until the channel has more bytes for us."""
        self._flush()
        chunk = self.sock.recv(RECV_SIZE)
        if not chunk:
            raise EOFError
        if self._pos:
            del self._in[: self._pos]
            self._pos = 0
        self._in += chunk

    def _next(self) -> tuple[int, int]:
        """(start, end) in the input buffer of the next whole packet's body (type byte first)."""
        while True:
            available = len(self._in) - self._pos
            if available >= 4:
                (length,) = _U32.unpack_from(self._in, self._pos)
                if length < 1 or length > MAX_REQUEST_BYTES:
                    raise _ProtocolError(f"bad SFTP packet length {length}")
                if available >= 4 + length:
                    start = self._pos + 4
                    self._pos = start + length
                    return start, self._pos
            self._fill()

    def _read_packet(self) -> tuple[int, bytes]:
        start, end = self._next()
        return self._in[start], bytes(self._in[start + 1 : end])

    def _send_packet(self, t: int, packet: paramiko.Message) -> None:
        body = packet.asbytes()
        self._queue(_U32.pack(len(body) + 1) + bytes((t,)) + body)

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._out:
            data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._out.clear()
            self._out_bytes = 0
            self.sock.sendall(data)

    def _send_server_version(self) -> int:
        """Answer INIT with version 3, advertising posix-rename (OpenSSH's `sftp` then renames
        with it, replacing an existing file as people expect)."""
        kind, data = self._read_packet()
        if kind != CMD_INIT or len(data) < 4:
            raise _ProtocolError("the client did not start with SFTP INIT")
        msg = paramiko.Message()
        msg.add_int(SFTP_VERSION)
        msg.add_string("posix-rename@openssh.com")
        msg.add_string("1")
        self._send_packet(CMD_VERSION, msg)
        return int(_U32.unpack_from(data)[0])

    # --- the loop --------------------------------------------------------------------------------

    def start_subsystem(self, name: str, transport: paramiko.Transport, channel: paramiko.Channel) -> None:
        self.sock = channel
        try:
            self._send_server_version()
            self.server.session_started()
            while True:
                start, end = self._next()
                if end - start < 5:
                    raise _ProtocolError("SFTP packet without a request id")
                kind = self._in[start]
                (request_id,) = _U32.unpack_from(self._in, start + 1)
                try:
                    if kind == CMD_WRITE:
                        self._write(request_id, start + 5, end)
                    elif kind == CMD_READ:
                        self._read(request_id, start + 5, end)
                    elif kind == CMD_CLOSE and self._close(request_id, start + 5):
                        pass
                    else:
                        msg = paramiko.Message(bytes(self._in[start + 5 : end]))
                        self._process(kind, request_id, msg)
                except _Refused as exc:
                    self._queue(_status_packet(request_id, exc.code, exc.message))
                except OSError as exc:
                    self._queue(_status_packet(request_id, _code_of(exc), _message_of(exc)))
                except UnicodeDecodeError:
                    self._queue(_status_packet(request_id, SFTP_FAILURE, "file names must be UTF-8"))
                except Exception:
                    log.exception("SFTP request %d from %s failed", kind, self._peer)
                    self._queue(_status_packet(request_id, SFTP_FAILURE))
            # (the loop only ends by an exception: EOF or a broken client)
        except EOFError:
            pass
        except _ProtocolError as exc:
            log.warning("closing the SFTP channel of %s: %s", self._peer, exc)
        except Exception as exc:
            if transport.is_active() and not channel.closed:
                log.warning("SFTP channel of %s ended: %r", self._peer, exc, exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                self._flush()

    def _handle(self, start: int) -> tuple[_File, int]:
        (length,) = _U32.unpack_from(self._in, start)
        handle = self.file_table.get(bytes(self._in[start + 4 : start + 4 + length]))
        if not isinstance(handle, _File):
            raise _Refused(SFTP_BAD_MESSAGE, "Invalid handle")
        return handle, start + 4 + length

    def _close(self, request_id: int, start: int) -> bool:
        """CLOSE of one of our files (False: a folder handle, paramiko's business). Unlike
        paramiko's server, a failed upload says so again here: clients check it."""
        (length,) = _U32.unpack_from(self._in, start)
        name = bytes(self._in[start + 4 : start + 4 + length])
        handle = self.file_table.get(name)
        if not isinstance(handle, _File):
            return False
        del self.file_table[name]
        handle.close()  # raises _Refused for an upload that failed
        self._queue(_status_packet(request_id, SFTP_OK))
        return True

    def _write(self, request_id: int, start: int, end: int) -> None:
        handle, position = self._handle(start)
        offset, length = _WRITE_ARGS.unpack_from(self._in, position)
        position += _WRITE_ARGS.size
        if position + length > end:
            raise _ProtocolError("WRITE request shorter than its data")
        with memoryview(self._in) as view, view[position : position + length] as data:
            handle.write_at(offset, data)
        self._queue(_status_packet(request_id, SFTP_OK))

    def _read(self, request_id: int, start: int, end: int) -> None:
        handle, position = self._handle(start)
        offset, length = _READ_ARGS.unpack_from(self._in, position)
        data = handle.read_at(offset, length)
        if not data:
            self._queue(_status_packet(request_id, SFTP_EOF))
            return
        self._queue(_DATA_HEADER.pack(9 + len(data), CMD_DATA, request_id, len(data)))
        self._queue(data)

    def finish_subsystem(self) -> None:
        """Close the channel; files still open were interrupted uploads (not reported)."""
        try:
            self.server.session_ended()
        finally:
            paramiko.SubsystemHandler.finish_subsystem(self)
            files: dict[bytes, Any] = self.file_table
            for handle in list(files.values()):
                with contextlib.suppress(Exception):
                    if isinstance(handle, _File):
                        handle.abort()
                    else:
                        handle.close()
            files.clear()
            folders: dict[bytes, Any] = self.folder_table
            folders.clear()


# --- the server ------------------------------------------------------------------------------------


class HostedSftpServer:
    """A listening SFTP server: `start()`, `port`, `host_key_fingerprint`, `stop()`.

    `port=0` picks a free port (tests); `.port` says which one after `start()`."""

    def __init__(
        self,
        gateway: AccountGateway,
        host: str,
        port: int,
        host_key_path: Path,
        *,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.host_key_path = Path(host_key_path)
        self.max_sessions = max_sessions
        self.host_key: paramiko.PKey | None = None
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sessions: dict[threading.Thread, paramiko.Transport | None] = {}
        self._channels: list[_SftpChannel] = []

    # --- host key --------------------------------------------------------------------------------

    @property
    def host_key_line(self) -> str:
        """The public key as "<type> <base64>" (what a partner pins, or puts in known_hosts)."""
        key = self._key()
        return f"{key.get_name()} {key.get_base64()}"

    @property
    def host_key_fingerprint(self) -> str:
        """SHA256 fingerprint as OpenSSH prints it, for partners to compare on first login."""
        return fingerprint(self._key().asbytes())

    def _key(self) -> paramiko.PKey:
        if self.host_key is None:
            self.host_key = load_or_create_host_key(self.host_key_path)
        return self.host_key

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> HostedSftpServer:
        """Load (or create) the host key, listen, and accept clients in a daemon thread."""
        if self._listener is not None:
            return self
        self._key()
        family, kind, proto, _name, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(128)
            listener.settimeout(0.25)  # the accept loop checks for stop() this often
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"sftp-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        log.info(
            "hosted SFTP server listening on %s:%d (host key %s)",
            self.host,
            self.port,
            self.host_key_fingerprint,
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, close every session, and wait for their threads."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
            self._accept_thread = None
        with self._lock:
            sessions = list(self._sessions.items())
            channels = list(self._channels)
        for _thread, transport in sessions:
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.close()
        deadline = time.monotonic() + timeout
        for thread, _transport in sessions:
            thread.join(max(0.0, deadline - time.monotonic()))
        for channel in channels:
            channel.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._channels = [c for c in self._channels if c.is_alive()]

    def __enter__(self) -> HostedSftpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def sessions(self) -> int:
        """Connected clients right now."""
        with self._lock:
            return len(self._sessions)

    def _track(self, channel: _SftpChannel) -> None:
        with self._lock:
            self._channels = [c for c in self._channels if c.is_alive()]
            self._channels.append(channel)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            listener = self._listener
            if listener is None:
                return
            try:
                client, address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                log.exception("accepting a connection failed")
                time.sleep(0.1)  # e.g. out of file descriptors: do not spin
                continue
            peer = f"{address[0]}:{address[1]}"
            with self._lock:
                if len(self._sessions) >= self.max_sessions:
                    log.warning("refused %s: %d sessions already open", peer, len(self._sessions))
                    client.close()
                    continue
                thread = threading.Thread(
                    target=self._serve, args=(client, peer), name=f"sftp-session-{peer}", daemon=True
                )
                self._sessions[thread] = None
            thread.start()

    def _serve(self, client: socket.socket, peer: str) -> None:
        """One client, start to end. Nothing it does may escape this function."""
        me = threading.current_thread()
        transport: paramiko.Transport | None = None
        try:
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            transport = paramiko.Transport(
                client, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE
            )
            transport.set_log_channel(PARAMIKO_LOG)
            transport.add_server_key(self._key())
            transport.set_subsystem_handler("sftp", _SftpChannel, _ConfinedFs)
            with self._lock:
                self._sessions[me] = transport
            if self._stopping.is_set():
                return
            login = _Login(self, peer)
            try:
                transport.start_server(server=login)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                log.info("SSH handshake with %s failed: %s", peer, exc)
                return
            transport.set_keepalive(KEEPALIVE_SECONDS)
            deadline = time.monotonic() + LOGIN_GRACE_SECONDS
            while transport.is_active() and not self._stopping.is_set():
                if login.locked_out.is_set():
                    log.warning("closing %s after %d failed logins", peer, MAX_AUTH_FAILURES)
                    time.sleep(0.05)  # let the last failure reply go out first
                    break
                if login.account is None and time.monotonic() > deadline:
                    log.warning("closing %s: no login within %.0f s", peer, LOGIN_GRACE_SECONDS)
                    break
                login.locked_out.wait(0.25)
        except Exception:
            log.exception("SFTP session with %s failed", peer)
        finally:
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.close()
            with contextlib.suppress(OSError):
                client.close()
            with self._lock:
                self._sessions.pop(me, None)
