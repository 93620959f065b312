"""One FTP(S) session (pyftpdlib's `FTPHandler`): the login off the IO loop, and upload
completion.

* **Logins are checked off the IO loop.** `Gateway.authenticate` opens DuckDB and checks the password hash
  (~60 ms) and could wait on a database lock held by another process, so `ftp_PASS` parks the
  session, checks the password in the server's login pool and takes the answer back on the loop
  (`loop.LoopWaker`). A wrong user and a wrong password get the same fixed 530 after a short
  delay (pyftpdlib's non-blocking `auth_failed_timeout`), and the session is dropped after
  three failures; the password is never logged or echoed.
* **Upload completion.** A finished STOR calls `Gateway.upload_complete` unless the name is
  still in flight (`connectbatch.transfer.naming`); RNFR/RNTO of a file to a final name
  completes it (from an in-flight name or any other, as over SFTP). An over-limit upload is deleted.
* **A broken upload is never a file.** For STOR the end of the data connection is the end of
  the file, so a client killed mid-upload (its kernel closes both sockets normally) looks like
  a finished one if the data connection's close is seen first. So a finished STOR is only
  complete once the control connection is seen alive `upload_settle` seconds later (the client
  waits for the 226); a session that ends first leaves a *broken* upload: not ingested, its
  partial file kept for a resume (REST/APPE) until the server's sweep removes it after the
  grace period.
* **Floods and guessing** (`guard`): at most a few not-yet-logged-in connections per address
  (a new one displaces the address's oldest), each dropped after the pre-auth timeout;
  growing delays and then a temporary refusal for an address that keeps failing; unhandled
  errors logged as one line, rate-limited.
* **A deleted login stops its sessions too.** The account is resolved once, at login; so a
  STOR/APPE/STOU and an upload's completion ask the gateway whether its credential and its
  connection still exist (`Gateway.revoked`): if not, 550 saying why (a finished upload's file
  is removed, never left unloaded), and the session ends.
* **No store work on the IO loop.** That check and an upload's hand-over (`Gateway.upload_complete`
  reads the connection's pattern, may write a history line and fsyncs a note) run in the
  server's pool like the password check (`_off_loop`), the session parked meanwhile: a store
  read waits for seconds behind a big ingest's checkpoint, and on the loop it stalled every
  other partner's session and transfer with it.
* **The connection's method**: an account of a non-FTP connection (an SFTP push login) gets
  the same 530 as a wrong password.
* **Sessions per login** (`push.sessions`): a right password for a login that already holds
  its sessions gets 421 saying so, logged once (rate-limited, no password), and the connection
  closes; a session's place is given back in `close()`, which every ending goes through (QUIT,
  a reset or timed-out socket, an error, the server stopping), or at a new USER or REIN.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar

from pyftpdlib.filesystems import FilesystemError
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.utils import strerror

from connectbatch.models import Method
from connectbatch.transfer.naming import is_in_flight
from connectbatch.transfer.push.ftp.authorizer import LOGIN_FAILED, LOGIN_OK, GatewayAuthorizer
from connectbatch.transfer.push.ftp.data_channel import CappedFile, LimitedDTP, peer_gone
from connectbatch.transfer.push.ftp.filesystem import ConfinedFS, refused_path
from connectbatch.transfer.push.ftp.guard import Pending
from connectbatch.transfer.push.ftp.loop import LoopWaker, ServerContext
from connectbatch.transfer.push.ftp.passive import BoundPassiveDTP
from connectbatch.transfer.push.gateway import Account
from connectbatch.transfer.push.sessions import SessionTicket, too_many_sessions

log = logging.getLogger("connectbatch.transfer.push.ftp")

BANNER = "ConnectBatch FTP server ready."
TLS_REQUIRED = "530 TLS required: use AUTH TLS (explicit FTPS) before logging in."
DISPLACED = (
    "421 Closed: too many connections from your address have not logged in; "
    "a newer one took this one's place."
)
LOCKED_OUT = "421 Too many failed logins from your address; try again later."
PREAUTH_EXPIRED = "421 Login timed out."
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
    passive_dtp = BoundPassiveDTP  # a foreign address on the data port aborts nothing
    banner = BANNER
    max_login_attempts = 3
    proto_cmds: ClassVar[dict[str, Any]] = {
        name: spec for name, spec in FTPHandler.proto_cmds.items() if name not in REMOVED_COMMANDS
    }

    # pyftpdlib calls these; set per instance in `handle`.
    _pending: Pending | None = None  # counted among its address's not logged in (`guard`)
    _preauth_timer: Any = None
    _settling: str | None = None
    _settle_timer: Any = None
    _ticket: SessionTicket | None = None  # this session's place among its login's
    _pass_at: float | None = None  # when the PASS being checked came

    # ---- connection admission

    def handle(self) -> None:
        """A new connection: refused (421) if its address is locked out; otherwise greeted,
        with a pre-auth timer running. When its address already holds too many connections
        that have not logged in, the oldest of them is closed to make room (`guard`)."""
        guard = self.context.guard
        address = self.remote_ip
        if guard.locked(address):
            self.respond(LOCKED_OUT, logfun=log.info)
            self.close_when_done()
            return
        self._pending, displaced = guard.admit(address, self._displaced)
        for old in displaced:
            old.close(DISPLACED)
        if displaced:
            log.info(
                "closed %d idle connection(s) from %s to make room for a new one", len(displaced), address
            )
        if self.context.preauth_timeout > 0:
            self._preauth_timer = self.ioloop.call_later(
                self.context.preauth_timeout, self._preauth_expired, _errback=self.handle_error
            )
        super().handle()

    def _preauth_expired(self) -> None:
        self._preauth_timer = None
        if self._closed or self.authenticated:
            return
        if self in self.context.checking:  # its password is being checked: look again soon
            self._preauth_timer = self.ioloop.call_later(
                1.0, self._preauth_expired, _errback=self.handle_error
            )
            return
        self.respond(PREAUTH_EXPIRED, logfun=log.info)
        self.close_when_done()

    def _displaced(self, reply: str) -> None:
        """A newer connection took this one's place (from its address, or on a full server):
        `reply` (a 421 saying so) and closed."""
        self._pending = None  # no longer counted
        if self._closed or self.authenticated:
            return
        if self in self.context.checking:  # parked off the loop for its password: just gone
            self.close()
            return
        self.respond(reply, logfun=log.debug)
        self.close_when_done()

    def _uncount(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.context.guard.release(pending)
        timer, self._preauth_timer = self._preauth_timer, None
        if timer is not None and not timer.cancelled:
            timer.cancel()

    def close(self) -> None:
        if not self._closed:
            self._uncount()
            self._leave()
            timer, self._settle_timer = self._settle_timer, None
            if timer is not None and not timer.cancelled:
                timer.cancel()
            self._stop_writing()  # before pyftpdlib lets go of the file system
        super().close()
        settling, self._settling = self._settling, None
        if settling is not None:
            self._broken(settling)

    def _stop_writing(self) -> str | None:
        """The session's upload ended: its file is no longer being written (`push.writers`).
        The name another session renamed it to meanwhile, if one did."""
        fs = self.fs
        if isinstance(fs, ConfinedFS):
            return fs.stop_writing()
        return None

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        """A path with a control character gets 501 saying so, before pyftpdlib maps it onto
        the file system (see `filesystem`); the session goes on."""
        spec = self.proto_cmds.get(cmd)
        why = refused_path(arg) if arg and spec is not None and spec["perm"] is not None else None
        if why is not None:
            self.respond(f"501 {why}", logfun=log.info)
            return
        super().pre_process_command(line, cmd, arg)

    def log_exception(self, instance: object) -> None:
        """One line, no traceback: a flood of broken connections must not flood the log."""
        error = sys.exc_info()[1]
        log.warning("FTP session error: %s", type(error).__name__ if error is not None else "unknown")

    # ---- login

    def handle_auth_failed(self, msg: str, password: str) -> None:
        """pyftpdlib's delayed 530, the delay growing per address (`guard`) and counted from
        the PASS: how long the check took (a known user's is slower) does not show."""
        checking = time.monotonic() - self._pass_at if self._pass_at is not None else 0.0
        self.auth_failed_timeout = max(0.0, self.context.guard.login_failed(self.remote_ip) - checking)
        super().handle_auth_failed(msg, password)

    def ftp_PASS(self, line: str) -> None:
        """Check the password in the login pool; the session reads no further commands
        until the answer is back on the loop (`_password_checked`)."""
        if self.authenticated:
            self.respond("503 User already authenticated.")
            return
        if not self.username:
            self.respond("503 Login with USER first.")
            return
        username, self._pass_at = self.username, time.monotonic()
        self._off_loop(
            functools.partial(self.authorizer.login, username, line),
            functools.partial(self._password_checked, username),
        )

    def _password_checked(self, username: str, future: Future[Account | None]) -> None:
        try:
            account = future.result()
        except Exception:
            log.exception("FTP login check failed", extra={"username": username})
            self.respond("421 Login is unavailable right now; try again later.")
            self.close_when_done()
            return
        if self.context.guard.locked(self.remote_ip):
            self.respond(LOCKED_OUT, logfun=log.info)
            self.close_when_done()
            return
        if account is not None and account.method is not Method.FTP:
            account = None  # another method's login: refused like a wrong password
        if account is None or username != self.username:
            # The password goes no further than this method: not to pyftpdlib's
            # on_login_failed hook, not into any log line.
            self.handle_auth_failed(LOGIN_FAILED, "")
            return
        self.context.guard.login_succeeded(self.remote_ip)
        ticket = self.context.sessions.open(account.username)
        if ticket is None:
            self._refuse_session(account)
            return
        self._ticket = ticket
        self._uncount()
        self.account = account
        self.authorizer = GatewayAuthorizer(self.context.gateway, account)
        self.handle_auth_success(str(account.home), "", LOGIN_OK)

    def _refuse_session(self, account: Account) -> None:
        """A right password, but its login already holds all its sessions: 421 and closed
        (a temporary refusal: the partner may try again once one of them ended)."""
        limit = self.context.sessions.per_login
        log.warning(
            "refused a session of login %r from %s: it already holds %d "
            "(CONNECTBATCH_MAX_SESSIONS_PER_LOGIN)",
            account.username, self.remote_ip, limit,
        )  # fmt: skip
        self.respond(f"421 {too_many_sessions(limit)}", logfun=log.debug)
        self.close_when_done()

    def _leave(self) -> None:
        """The session is no longer logged in: its login's place is free again."""
        ticket, self._ticket = self._ticket, None
        self.context.sessions.close(ticket)

    def flush_account(self) -> None:
        """USER after a login, or REIN: back to the refuse-everything authorizer."""
        super().flush_account()
        self._leave()
        self.account = None
        self.__dict__.pop("authorizer", None)

    # ---- work off the loop

    def _off_loop(self, work: Callable[[], Any], then: Callable[[Future[Any]], None]) -> None:
        """Run `work` (it reads or writes the store) in the server's pool while this session
        reads no further commands; `then(future)` runs back on the loop, unless the session
        ended meanwhile. Every other session is served in between."""
        context = self.context
        try:
            future = context.login_pool.submit(work)
        except RuntimeError:  # the server is stopping
            self.respond("421 Server shutting down.")
            self.close_when_done()
            return
        self.del_channel()
        context.checking.add(self)
        future.add_done_callback(functools.partial(self._resume_soon, context.waker, self._resume, then))

    @staticmethod
    def _resume_soon(
        waker: LoopWaker,
        resume: Callable[[Future[Any], Callable[[Future[Any]], None]], None],
        then: Callable[[Future[Any]], None],
        future: Future[Any],
    ) -> None:
        waker.call_soon(resume, future, then)

    def _resume(self, future: Future[Any], then: Callable[[Future[Any]], None]) -> None:
        self.context.checking.discard(self)
        if self._closed:
            return
        self.add_channel()
        then(future)

    def _why(self, future: Future[str | None]) -> str | None:
        """A store check's answer; a check that failed is logged and refuses nothing (the
        upload's own ingest says what is wrong with the store)."""
        try:
            return future.result()
        except Exception:
            log.exception("FTP session check failed", extra={"username": self.username})
            return None

    # ---- uploads

    def on_file_received(self, file: str) -> None:
        """The data connection ended normally. Complete only once the control connection
        is seen alive a moment later (`reply_after_upload`); a client leaving with QUIT
        during the transfer said goodbye properly, so that upload is complete now."""
        if self._quit_pending:  # no reply is owed: handed over in the pool, not waited for
            complete = functools.partial(self._complete, self.account, self._stop_writing() or file)
            try:
                self.context.login_pool.submit(complete)
            except RuntimeError:  # the server is stopping: handed over here, never dropped
                complete()
        else:
            self._settling = file

    def reply_after_upload(self, reply: tuple[Any, ...]) -> None:
        """The data channel's final reply (226/426/552...). After a STOR that ended
        normally it waits `upload_settle` seconds, then the client's control connection
        decides: alive, the upload is complete (ingested, then 226); gone, it is broken."""
        if self._settling is None:
            if reply:
                self.respond(reply[0], logfun=reply[1])
            return
        self._settle_timer = self.ioloop.call_later(
            self.context.upload_settle, self._settled, reply, _errback=self.handle_error
        )

    def _settled(self, reply: tuple[Any, ...]) -> None:
        self._settle_timer = None
        file, self._settling = self._settling, None
        if file is None or self._closed:
            return
        moved = self._stop_writing()  # complete or broken: written either way
        if peer_gone(self.socket):  # the client left before seeing the 226
            self._broken(file)
            self.close()
            return
        self._off_loop(
            functools.partial(self._complete, self.account, moved or file),
            functools.partial(self._reply_completed, reply),
        )

    def _reply_completed(self, reply: tuple[Any, ...] | None, future: Future[str | None]) -> None:
        """Back on the loop after `_complete`: the reply the upload earned, or 550 saying
        why it was refused (and the session ends)."""
        refused = self._why(future)
        if refused:
            self._refuse_revoked(refused)
        elif reply:
            self.respond(reply[0], logfun=reply[1])

    def _broken(self, file: str) -> None:
        """An upload cut off by its client: never ingested. The partial file stays for a
        resume until the server's sweep removes it (CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS)."""
        self._stop_writing()
        account = self.account
        log.warning(
            "FTP upload broken off by the client; not loaded",
            extra={"username": account.username if account else None, "file": os.path.basename(file)},
        )

    def on_incomplete_file_received(self, file: str) -> None:
        """Aborted or cut off: never ingested (the partial file is kept for a resume until
        the sweep). Over the size limit or the push quota: deleted (it can never become a valid
        upload, or its bytes are what the quota keeps out); a quota refusal is also written to
        the connection's history."""
        self._stop_writing()
        data = self.data_channel
        capped = getattr(data, "file_obj", None)
        if not (isinstance(capped, CappedFile) and capped.exceeded):
            self._broken(file)
            return
        if self.fs is not None and not self.fs.validpath(file):
            return
        try:
            os.unlink(file)
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not remove a partial upload", exc_info=True)
        if capped.over_quota and self.account is not None:  # the connection's history says so
            self.context.gateway.upload_over_quota(self.account, Path(file))

    def ftp_RNTO(self, path: str) -> tuple[str, str] | None:
        """pyftpdlib's RNTO, completing a file renamed to a final name before the 250 reply
        goes out, as SFTP does: from an in-flight name (`.part`), and from any other, such as a
        temporary name the connection's pattern does not take (`calls.csv.uploading`)."""
        if not self._rnfr:
            self.respond("503 Bad sequence of commands: use RNFR first.")
            return None
        src, self._rnfr = self._rnfr, None
        try:
            self.run_as_current_user(self.fs.rename, src, path)
        except (OSError, FilesystemError) as err:
            self.respond(f"550 {strerror(err)}.")
            return None
        if os.path.isfile(path) and not os.path.islink(path):
            self._off_loop(
                functools.partial(self._complete, self.account, path),
                functools.partial(self._reply_completed, ("250 Renaming ok.", log.debug)),
            )
        else:
            self.respond("250 Renaming ok.")
        return src, path

    def _revoked(self, account: Account | None) -> str | None:
        """Why this session may no longer act (its login's credential or connection deleted
        since it logged in: `Gateway.revoked`), or None. Reads the store: off the loop."""
        if account is None:
            return None
        try:
            why = self.context.gateway.revoked(account)
        except Exception:  # the store is unavailable: the upload's own ingest will say so
            log.exception("could not check a login", extra={"username": account.username})
            return None
        if why:
            log.warning("refused a request by %r: %s", account.username, why)
        return why

    def _refuse_revoked(self, why: str) -> None:
        """550 saying why, and the session ends."""
        self.respond(f"550 {why[:1].upper()}{why[1:]}.", logfun=log.info)
        self.close_when_done()

    # pyftpdlib's STOR/APPE, STOU, RETR, LIST, NLST and MLSD, refused once the login or its
    # connection was deleted; reads too: a deleted "Pull from us" connection's session never
    # writes, and went on downloading, its partner offboarded (outbound audit).
    def ftp_STOR(self, file: str, mode: str = "w") -> None:
        stor = super().ftp_STOR
        self._unless_revoked(lambda: stor(file, mode))

    def ftp_STOU(self, line: str) -> None:
        stou = super().ftp_STOU
        self._unless_revoked(lambda: stou(line))

    def ftp_RETR(self, file: str) -> None:
        retr = super().ftp_RETR
        self._unless_revoked(lambda: retr(file))

    def ftp_LIST(self, path: str) -> None:
        listing = super().ftp_LIST
        self._unless_revoked(lambda: listing(path))

    def ftp_NLST(self, path: str) -> None:
        names = super().ftp_NLST
        self._unless_revoked(lambda: names(path))

    def ftp_MLSD(self, path: str) -> None:
        facts = super().ftp_MLSD
        self._unless_revoked(lambda: facts(path))

    def _unless_revoked(self, request: Callable[[], object]) -> None:
        """`request` once the pool found the login and its connection still there; else 550."""
        revoked, then = functools.partial(self._revoked, self.account), self._write_unless_revoked
        self._off_loop(revoked, functools.partial(then, request))

    def _write_unless_revoked(self, write: Callable[[], object], future: Future[str | None]) -> None:
        why = self._why(future)
        if why:
            self._refuse_revoked(why)
        else:
            write()

    def _complete(self, account: Account | None, file: str) -> str | None:
        """Hand a finished upload to the gateway; or, its login or connection deleted
        meanwhile, remove it and return why (the caller says so and ends the session).
        Reads the store: runs in the server's pool, never on the loop."""
        if account is None or not account.writable or is_in_flight(os.path.basename(file)):
            return None
        why = self._revoked(account)
        if why:
            try:
                os.unlink(file)
            except OSError:
                log.warning("could not remove an upload refused for a deleted login", exc_info=True)
            return why
        try:
            self.context.gateway.upload_complete(account, Path(file))
        except Exception:  # the upload itself succeeded; ingestion problems are logged there
            log.exception("could not hand an upload to ingestion", extra={"username": account.username})
        return None
