"""Our hosted FTP / explicit-FTPS server: "Push to us" uploads and "Pull from us" downloads.

pyftpdlib speaks the protocol; everything ConnectBatch-specific comes from the `Gateway`:
who a login is (`authenticate`), which folder it is confined to and whether it may write
(`Account.home`, `writable`), how large an upload may grow (`max_file_bytes`), and what to
do with a finished upload (`upload_complete`, which ingests in a worker thread).

Why the pieces below exist, in the order a session meets them:

* **Logins are checked off the IO loop.** pyftpdlib serves every session from one thread;
  `Gateway.authenticate` opens DuckDB and runs scrypt (~60 ms), and could wait on a
  database lock held by another process. `ftp_PASS` therefore parks the session, checks
  the password in a small thread pool and hands the answer back to the loop through a
  socketpair (`_LoopWaker`), so 20 partners logging in at once do not stall each other's
  transfers. A wrong user and a wrong password get the same fixed 530 after a short delay
  (pyftpdlib's non-blocking `auth_failed_timeout`), and the session is dropped after three
  failures; the password is never logged or echoed.
* **Each session gets its own authorizer** bound to its account, instead of pyftpdlib's
  usual username-keyed table: permissions are "elr" for read-only (outbound) accounts and
  "elradfmw" for push accounts; SITE CHMOD and MFMT are not offered at all.
* **Confinement.** pyftpdlib maps client paths into the home folder; `_ConfinedFS` also
  checks the resolved path of every operation (a planted symlink pointing out of the home
  is neither listed nor followed), opens files for writing with O_NOFOLLOW, and never
  shows where a symlink points.
* **Size limit.** The data channel (`_LimitedDTP`) refuses the chunk that would take a file
  past `max_file_bytes`, closes the transfer with 552 and deletes the partial file.
* **Upload completion.** A finished STOR calls `Gateway.upload_complete` unless the name is
  still in flight (`.part`, `.tmp`, `.filepart`); RNFR/RNTO from such a name to a final name
  completes it instead. An interrupted upload is deleted. The 226/250 reply is sent only
  after the upload was handed to the gateway, so a client that saw the reply (and a test
  that then calls `Gateway.wait()`) can rely on the ingest having been started.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from pyftpdlib.authorizers import AuthenticationFailed
from pyftpdlib.filesystems import AbstractedFS, FilesystemError
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.ioloop import AsyncChat, IOLoop
from pyftpdlib.servers import FTPServer
from pyftpdlib.utils import strerror

from connectbatch.errors import ConfigurationError
from connectbatch.transfer.push.gateway import IN_FLIGHT_SUFFIXES, Account, Gateway

log = logging.getLogger("connectbatch.transfer.push.ftp")

READ_ONLY_PERMS = "elr"  # change dir, list, retrieve
WRITABLE_PERMS = "elradfmw"  # + append, delete, rename, make dir, store (no chmod "M", no mtime "T")
LOGIN_FAILED = "Login incorrect."
LOGIN_OK = "Login successful."
GOODBYE = "Goodbye."
BANNER = "ConnectBatch FTP server ready."
# Commands we never allow, removed so that FEAT and HELP do not advertise them either.
_REMOVED_COMMANDS = frozenset({"SITE CHMOD", "MFMT"})


def _is_in_flight(name: str) -> bool:
    """Still being uploaded under a temporary name: ingest it only once it is renamed."""
    return name.lower().endswith(IN_FLIGHT_SUFFIXES)


# --------------------------------------------------------------------------- IO loop helper


class _LoopWaker(AsyncChat):  # type: ignore[misc]  # pyftpdlib is untyped
    """Runs callables on the IO-loop thread on behalf of other threads.

    pyftpdlib's scheduler is not thread-safe and its poll may sleep indefinitely, so a
    thread that finished some work (a password check, a stop request) queues a callable
    here and writes one byte to a socketpair, which wakes the loop at once.
    """

    def __init__(self, ioloop: Any) -> None:
        reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._calls: queue.SimpleQueue[tuple[Callable[..., object], tuple[Any, ...]]] = queue.SimpleQueue()
        super().__init__(reader, ioloop=ioloop)

    def call_soon(self, function: Callable[..., object], *args: Any) -> None:
        """Thread-safe: run `function(*args)` on the loop thread as soon as it wakes."""
        self._calls.put((function, args))
        # OSError: buffer full, so a wake-up is pending anyway; or closed, so the loop is
        # gone and whatever was queued no longer matters.
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read_event(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.recv(4096)
        while True:
            try:
                function, args = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                function(*args)
            except Exception:
                log.exception("FTP server callback failed")

    handle_read = handle_read_event

    def close(self) -> None:
        super().close()
        self._writer.close()


@dataclass
class _ServerContext:
    """What every session of one server shares: the gateway and the login machinery."""

    gateway: Gateway
    waker: _LoopWaker
    login_pool: ThreadPoolExecutor
    checking: set[Any] = field(default_factory=set)  # sessions waiting for a password check


# --------------------------------------------------------------------------- authorizer


class GatewayAuthorizer:
    """pyftpdlib's authorizer interface, answered from one `Account`.

    Each session gets its own instance once it has logged in (the class-level one, with no
    account, refuses everything). pyftpdlib's own authorizers keep a table keyed by user
    name; ours has nothing to keep in sync with the credential store, and two sessions of
    the same login can never see each other's state.
    """

    def __init__(self, gateway: Gateway, account: Account | None = None) -> None:
        self.gateway = gateway
        self.account = account

    def login(self, username: str, password: str) -> Account | None:
        """The account for these credentials, or None. Blocking: scrypt and DuckDB."""
        return self.gateway.authenticate(username, password)

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        """pyftpdlib's synchronous hook; our handler checks logins in a thread instead, but
        the answer is the same either way."""
        account = self.login(username, password)
        if account is None:
            raise AuthenticationFailed(LOGIN_FAILED)
        handler.account = account
        handler.authorizer = GatewayAuthorizer(self.gateway, account)

    def get_home_dir(self, username: str) -> str:
        if self.account is None:
            raise AuthenticationFailed(LOGIN_FAILED)
        return str(self.account.home)

    def get_perms(self, username: str) -> str:
        if self.account is None:
            return ""
        return WRITABLE_PERMS if self.account.writable else READ_ONLY_PERMS

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        if self.account is None or perm not in self.get_perms(username):
            return False
        if path is None:
            return True
        home = str(self.account.home)
        real = os.path.realpath(path)
        return real == home or real.startswith(home + os.sep)

    def has_user(self, username: str) -> bool:
        return self.account is not None and self.account.username == username

    def get_msg_login(self, username: str) -> str:
        return LOGIN_OK

    def get_msg_quit(self, username: str) -> str:
        return GOODBYE

    def impersonate_user(self, username: str, password: str) -> None:
        """Sessions are not separate OS users: confinement is `_ConfinedFS`'s job."""

    def terminate_impersonation(self, username: str) -> None:
        """See `impersonate_user`."""


# --------------------------------------------------------------------------- filesystem


def _open_nofollow(path: str, flags: int) -> int:
    """`open()` opener that refuses to write through a symlink (checked atomically)."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o640)


class _ConfinedFS(AbstractedFS):  # type: ignore[misc]
    """pyftpdlib's virtual filesystem rooted at the account's home, plus resolved-path
    checks on every operation.

    pyftpdlib already normalises client paths into the root and checks `validpath` for
    most commands; repeating the check here keeps a planted symlink from leaking anything
    through the operations it does not cover (listings show the targets of links and
    `stat` follows them), and makes confinement a property of the filesystem object rather
    than of each command handler.
    """

    def validpath(self, path: str) -> bool:
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

    def _require(self, *paths: str) -> None:
        for path in paths:
            if not self.validpath(path):
                raise FilesystemError("No such file or directory (outside your folder)")

    def open(self, filename: str, mode: str) -> IO[Any]:
        self._require(filename)
        if any(flag in mode for flag in "wa+"):
            return open(filename, mode, opener=_open_nofollow)
        return open(filename, mode)

    def mkstemp(self, suffix: str = "", prefix: str = "", dir: str | None = None, mode: str = "wb") -> Any:
        self._require(dir or self.root)
        return super().mkstemp(suffix=suffix, prefix=prefix, dir=dir, mode=mode)

    def chdir(self, path: str) -> None:
        self._require(path)
        super().chdir(path)

    def mkdir(self, path: str) -> None:
        self._require(path)
        super().mkdir(path)

    def listdir(self, path: str) -> list[str]:
        """Entries of a folder, without those that resolve outside the home (symlinks
        pointing out are not shown at all: not even their names or targets)."""
        self._require(path)
        return [name for name in super().listdir(path) if self.validpath(os.path.join(path, name))]

    def listdirinfo(self, path: str) -> list[str]:
        return self.listdir(path)

    def rmdir(self, path: str) -> None:
        self._require(path)
        super().rmdir(path)

    def remove(self, path: str) -> None:
        self._require(path)
        super().remove(path)

    def rename(self, src: str, dst: str) -> None:
        self._require(src, dst)
        super().rename(src, dst)

    def chmod(self, path: str, mode: str) -> None:
        raise FilesystemError("Changing permissions is not allowed")

    def utime(self, path: str, timeval: float) -> None:
        raise FilesystemError("Changing modification times is not allowed")

    def stat(self, path: str) -> os.stat_result:
        self._require(path)
        return super().stat(path)  # type: ignore[no-any-return]

    def readlink(self, path: str) -> str:
        """Where a link points, as a path inside the home: the real location of the home
        is nobody's business."""
        self._require(path)
        return str(self.fs2ftp(os.path.realpath(path)))

    def getsize(self, path: str) -> int:
        self._require(path)
        return int(super().getsize(path))

    def getmtime(self, path: str) -> float:
        self._require(path)
        return float(super().getmtime(path))


# --------------------------------------------------------------------------- data channel


class _CappedFile:
    """The file an upload is written to, refusing to grow past the account's limit.

    A refused write leaves the file as it was and sets `exceeded`; the data channel then
    aborts the transfer. Everything else the data channel uses is passed through.
    """

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw = raw
        self.limit = limit
        self.exceeded = False
        self._position = int(raw.tell())  # APPE and REST start past 0

    @property
    def name(self) -> str:
        return str(self.raw.name)

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    def write(self, data: bytes) -> int:
        if self.exceeded or self._position + len(data) > self.limit:
            self.exceeded = True
            return 0
        written = int(self.raw.write(data))
        self._position += written
        return written

    def fileno(self) -> int:
        return int(self.raw.fileno())

    def close(self) -> None:
        self.raw.close()


class _LimitedDTP(DTPHandler):  # type: ignore[misc]
    """pyftpdlib's data channel with the per-account size limit, and with the final reply
    deferred until the control channel's completion hooks have run (see the module doc)."""

    file_obj: Any
    _resp: tuple[Any, ...]

    def enable_receiving(self, type: str, cmd: str) -> None:
        account = getattr(self.cmd_channel, "account", None)
        limit = account.max_file_bytes if account is not None else 0
        self.file_obj = _CappedFile(self.file_obj, limit)
        super().enable_receiving(type, cmd)

    def handle_read(self) -> None:
        super().handle_read()
        capped = self.file_obj
        if isinstance(capped, _CappedFile) and capped.exceeded and not self._closed:
            self.transfer_finished = False
            self._resp = (
                f"552 Upload aborted: the file is larger than the limit of {capped.limit} bytes.",
                log.warning,
            )
            self.close()

    # pyftpdlib binds the event to DTPHandler.handle_read at class creation: rebind it.
    handle_read_event = handle_read

    def close(self) -> None:
        if self._closed:
            return
        channel = self.cmd_channel
        if channel._quit_pending:  # the client is leaving: keep pyftpdlib's order
            super().close()
            return
        reply, self._resp = self._resp, ()
        super().close()  # closes the file, runs on_file_received / on_incomplete_file_received
        if reply and not channel._closed:
            channel.respond(reply[0], logfun=reply[1])


# --------------------------------------------------------------------------- control channel


class _PushHandler(FTPHandler):  # type: ignore[misc]
    """One FTP session. Configured per server by a subclass that sets `context` and the
    pyftpdlib class attributes (see `HostedFtpServer._handler_class`)."""

    context: ClassVar[_ServerContext]
    account: Account | None = None
    _rnfr: str | None
    abstracted_fs = _ConfinedFS
    dtp_handler = _LimitedDTP
    banner = BANNER
    max_login_attempts = 3
    proto_cmds: ClassVar[dict[str, Any]] = {
        name: spec for name, spec in FTPHandler.proto_cmds.items() if name not in _REMOVED_COMMANDS
    }

    # ---- login

    def ftp_PASS(self, line: str) -> None:
        """Check the password in the login pool; the session reads no further commands
        until the answer is back on the loop (`_password_checked`)."""
        if self.authenticated:
            self.respond("503 User already authenticated.")
            return
        if not self.username:
            self.respond("503 Login with USER first.")
            return
        context = self.context
        username = self.username
        try:
            future = context.login_pool.submit(self.authorizer.login, username, line)
        except RuntimeError:  # the server is stopping
            self.respond("421 Server shutting down.")
            self.close_when_done()
            return
        self.del_channel()
        context.checking.add(self)
        future.add_done_callback(
            functools.partial(self._hand_back, context.waker, self._password_checked, username)
        )

    @staticmethod
    def _hand_back(
        waker: _LoopWaker,
        callback: Callable[[str, Future[Account | None]], None],
        username: str,
        future: Future[Account | None],
    ) -> None:
        waker.call_soon(callback, username, future)

    def _password_checked(self, username: str, future: Future[Account | None]) -> None:
        self.context.checking.discard(self)
        if self._closed:
            return
        self.add_channel()
        try:
            account = future.result()
        except Exception:
            log.exception("FTP login check failed", extra={"username": username})
            self.respond("421 Login is unavailable right now; try again later.")
            self.close_when_done()
            return
        if account is None or username != self.username:
            # The password goes no further than this method: not to pyftpdlib's
            # on_login_failed hook, not into any log line.
            self.handle_auth_failed(LOGIN_FAILED, "")
            return
        self.account = account
        self.authorizer = GatewayAuthorizer(self.context.gateway, account)
        self.handle_auth_success(str(account.home), "", LOGIN_OK)

    def flush_account(self) -> None:
        """USER after a login, or REIN: back to the refuse-everything authorizer."""
        super().flush_account()
        self.account = None
        self.__dict__.pop("authorizer", None)

    # ---- uploads

    def on_file_received(self, file: str) -> None:
        self._complete(file)

    def on_incomplete_file_received(self, file: str) -> None:
        """Aborted, cut off or over the size limit: a partial file must never be ingested
        later, nor take space."""
        if self.fs is not None and not self.fs.validpath(file):
            return
        try:
            os.unlink(file)
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not remove a partial upload", exc_info=True)

    def ftp_RNTO(self, path: str) -> tuple[str, str] | None:
        """pyftpdlib's RNTO, completing an upload renamed from an in-flight name before the
        250 reply goes out."""
        if not self._rnfr:
            self.respond("503 Bad sequence of commands: use RNFR first.")
            return None
        src, self._rnfr = self._rnfr, None
        try:
            self.run_as_current_user(self.fs.rename, src, path)
        except (OSError, FilesystemError) as err:
            self.respond(f"550 {strerror(err)}.")
            return None
        if _is_in_flight(os.path.basename(src)) and os.path.isfile(path):
            self._complete(path)
        self.respond("250 Renaming ok.")
        return src, path

    def _complete(self, file: str) -> None:
        account = self.account
        if account is None or not account.writable or _is_in_flight(os.path.basename(file)):
            return
        try:
            self.context.gateway.upload_complete(account, Path(file))
        except Exception:  # the upload itself succeeded; ingestion problems are logged there
            log.exception("could not hand an upload to ingestion", extra={"username": account.username})


@functools.cache
def _tls_classes() -> tuple[type[Any], type[Any]]:
    """The FTPS session and data-channel classes. Built on first use because pyftpdlib's
    TLS support needs pyOpenSSL, which a plain-FTP deployment need not install."""
    try:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
    except ImportError:
        raise ConfigurationError(
            "explicit FTPS needs pyOpenSSL (pip install pyopenssl); "
            "or start the FTP server without a certificate"
        ) from None

    class _TlsLimitedDTP(TLS_DTPHandler, _LimitedDTP):  # type: ignore[misc]
        """TLS data channel (SSL layer first) over our size-limited data channel."""

        def send(self, data: bytes) -> int:
            """Never SSL_write zero bytes. An empty listing makes asynchat send b"";
            OpenSSL 3 fails that call, pyftpdlib takes the failure for a vanished client
            and drops the socket in the middle of the TLS handshake, and the client's
            unwrap() then fails with SHUTDOWN_WHILE_IN_INIT. Sending nothing instead lets
            the handshake and a clean TLS shutdown happen as for any other transfer."""
            if not data:
                return 0
            return int(super().send(data))

    class _TlsPushHandler(_PushHandler, TLS_FTPHandler):  # type: ignore[misc]
        """Our session over pyftpdlib's AUTH TLS / PBSZ / PROT support."""

        dtp_handler = _TlsLimitedDTP
        tls_control_required = True
        tls_data_required = True
        proto_cmds: ClassVar[dict[str, Any]] = {
            name: spec for name, spec in TLS_FTPHandler.proto_cmds.items() if name not in _REMOVED_COMMANDS
        }

    return _TlsPushHandler, _TlsLimitedDTP


def _ssl_context(cert: Path, key: Path) -> Any:
    """TLS 1.2 or newer, no compression; fails now (not at the first client) on bad files."""
    from OpenSSL import SSL

    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION)
    context.use_certificate_chain_file(str(cert))
    context.use_privatekey_file(str(key))
    context.check_privatekey()
    return context


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# --------------------------------------------------------------------------- server


class HostedFtpServer:
    """The hosted FTP (or explicit FTPS) endpoint, served from a daemon thread.

    `port=0` binds a free port, readable as `.port` after `start()`. With `tls_cert` and
    `tls_key` the server requires AUTH TLS before login and PROT P before any transfer.
    `passive_ports` limits the data-connection ports to a range a firewall can open;
    `masquerade_address` is the public address announced in PASV replies behind NAT (never
    used when binding to loopback, where clients connect to the address they dialled).
    """

    def __init__(
        self,
        gateway: Gateway,
        host: str,
        port: int,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        passive_ports: range | None = None,
        *,
        masquerade_address: str | None = None,
        failed_login_delay: float = 1.0,
        max_connections: int = 256,
        login_workers: int = 4,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ConfigurationError("FTPS needs both a certificate and its private key")
        self.gateway = gateway
        self.host = host
        self.port = port
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.passive_ports = passive_ports
        self.masquerade_address = None if _is_loopback(host) else masquerade_address
        self.failed_login_delay = failed_login_delay
        self.max_connections = max_connections
        self.login_workers = login_workers
        self._server: Any = None
        self._context: _ServerContext | None = None
        self._thread: threading.Thread | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def _handler_class(self, context: _ServerContext) -> type[Any]:
        """A session class for this server only: pyftpdlib configures sessions through
        class attributes, and two servers in one process must not share them."""
        base: type[Any] = _PushHandler
        attrs: dict[str, Any] = {
            "context": context,
            "authorizer": GatewayAuthorizer(context.gateway),
            "auth_failed_timeout": self.failed_login_delay,
            "passive_ports": list(self.passive_ports) if self.passive_ports else None,
            "masquerade_address": self.masquerade_address,
        }
        if self.tls_cert is not None and self.tls_key is not None:
            base, _dtp = _tls_classes()
            attrs["ssl_context"] = _ssl_context(self.tls_cert, self.tls_key)
            attrs["certfile"] = str(self.tls_cert)
            attrs["keyfile"] = str(self.tls_key)
        return type("HostedFtpsSession" if self.tls else "HostedFtpSession", (base,), attrs)

    def start(self) -> None:
        """Bind (raising at once if the port is taken) and serve from a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the FTP server is already running")
        pyftpdlib_log = logging.getLogger("pyftpdlib")
        if not pyftpdlib_log.handlers:
            # Without a handler pyftpdlib installs its own on stderr when the loop starts;
            # with this one its records simply propagate to the application's logging.
            pyftpdlib_log.addHandler(logging.NullHandler())
        ioloop = IOLoop.factory()
        waker = _LoopWaker(ioloop)
        pool = ThreadPoolExecutor(self.login_workers, thread_name_prefix="ftp-login")
        context = _ServerContext(self.gateway, waker, pool)
        try:
            handler = self._handler_class(context)
            server = FTPServer((self.host, self.port), handler, ioloop=ioloop)
        except BaseException:
            ioloop.close()
            pool.shutdown(wait=False)
            raise
        server.max_cons = self.max_connections
        self.port = int(server.address[1])
        self._server, self._context = server, context
        self._thread = threading.Thread(target=self._serve, name=f"ftp-server-{self.port}", daemon=True)
        self._thread.start()
        log.info("FTP%s server listening on %s:%d", "S" if self.tls else "", self.host, self.port)

    def _serve(self) -> None:
        try:
            self._server.serve_forever(handle_exit=False)
        except Exception:
            log.exception("the FTP server loop stopped")

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect every session and stop serving; waits for the loop thread."""
        thread, server, context = self._thread, self._server, self._context
        if thread is None or server is None or context is None:
            return
        if thread.is_alive():
            context.waker.call_soon(server.close_all)
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the FTP server thread did not stop within %.0f s", timeout)
        else:
            server.close_all()
        context.login_pool.shutdown(wait=False, cancel_futures=True)
        for session in list(context.checking):  # parked in a login check: not in the loop's map
            session.close()
        context.checking.clear()
        self._thread = self._server = self._context = None

    def __enter__(self) -> HostedFtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
