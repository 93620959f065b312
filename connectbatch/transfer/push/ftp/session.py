"""One FTP(S) session (pyftpdlib's `FTPHandler`): the login off the IO loop, and upload
completion.

* **Logins are checked off the IO loop.** `Gateway.authenticate` opens DuckDB and runs scrypt
  (~60 ms) and could wait on a database lock held by another process, so `ftp_PASS` parks the
  session, checks the password in the server's login pool and takes the answer back on the loop
  (`loop.LoopWaker`). A wrong user and a wrong password get the same fixed 530 after a short
  delay (pyftpdlib's non-blocking `auth_failed_timeout`), and the session is dropped after
  three failures; the password is never logged or echoed.
* **Upload completion.** A finished STOR calls `Gateway.upload_complete` unless the name is
  still in flight (`connectbatch.transfer.naming`); RNFR/RNTO from such a name to a final name
  completes it instead. An interrupted or over-limit upload is deleted.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar

from pyftpdlib.filesystems import FilesystemError
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.utils import strerror

from connectbatch.errors import ConfigurationError
from connectbatch.transfer.naming import is_in_flight
from connectbatch.transfer.push.ftp.authorizer import LOGIN_FAILED, LOGIN_OK, GatewayAuthorizer
from connectbatch.transfer.push.ftp.data_channel import LimitedDTP
from connectbatch.transfer.push.ftp.filesystem import ConfinedFS
from connectbatch.transfer.push.ftp.loop import LoopWaker, ServerContext
from connectbatch.transfer.push.gateway import Account

log = logging.getLogger("connectbatch.transfer.push.ftp")

BANNER = "ConnectBatch FTP server ready."
# Commands we never allow, removed so that FEAT and HELP do not advertise them either.
REMOVED_COMMANDS = frozenset({"SITE CHMOD", "MFMT"})


class PushHandler(FTPHandler):  # type: ignore[misc]
    """One FTP session. Configured per server by a subclass that sets `context` and the
    pyftpdlib class attributes (see `HostedFtpServer._handler_class`)."""

    context: ClassVar[ServerContext]
    account: Account | None = None
    _rnfr: str | None
    abstracted_fs = ConfinedFS
    dtp_handler = LimitedDTP
    banner = BANNER
    max_login_attempts = 3
    proto_cmds: ClassVar[dict[str, Any]] = {
        name: spec for name, spec in FTPHandler.proto_cmds.items() if name not in REMOVED_COMMANDS
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
        waker: LoopWaker,
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
        if is_in_flight(os.path.basename(src)) and os.path.isfile(path):
            self._complete(path)
        self.respond("250 Renaming ok.")
        return src, path

    def _complete(self, file: str) -> None:
        account = self.account
        if account is None or not account.writable or is_in_flight(os.path.basename(file)):
            return
        try:
            self.context.gateway.upload_complete(account, Path(file))
        except Exception:  # the upload itself succeeded; ingestion problems are logged there
            log.exception("could not hand an upload to ingestion", extra={"username": account.username})


@functools.cache
def tls_classes() -> tuple[type[Any], type[Any]]:
    """The FTPS session and data-channel classes. Built on first use because pyftpdlib's
    TLS support needs pyOpenSSL, which a plain-FTP deployment need not install."""
    try:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
    except ImportError:
        raise ConfigurationError(
            "explicit FTPS needs pyOpenSSL (pip install pyopenssl); "
            "or start the FTP server without a certificate"
        ) from None

    class _TlsLimitedDTP(TLS_DTPHandler, LimitedDTP):  # type: ignore[misc]
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

    class _TlsPushHandler(PushHandler, TLS_FTPHandler):  # type: ignore[misc]
        """Our session over pyftpdlib's AUTH TLS / PBSZ / PROT support."""

        dtp_handler = _TlsLimitedDTP
        tls_control_required = True
        tls_data_required = True
        proto_cmds: ClassVar[dict[str, Any]] = {
            name: spec for name, spec in TLS_FTPHandler.proto_cmds.items() if name not in REMOVED_COMMANDS
        }

    return _TlsPushHandler, _TlsLimitedDTP
