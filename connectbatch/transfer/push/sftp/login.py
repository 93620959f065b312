"""Login hygiene for one SSH connection (paramiko's `ServerInterface`).

Passwords or a partner's authorized public keys, through the gateway; a login works only for a
connection whose method is SFTP (an FTP login is refused here as a wrong password would be).
Every password failure is padded to the same duration whether the user exists or not; three per
connection close it, and an address with too many recent failures may not try passwords at all
(`guard.FailedLogins`): it is told so in a banner, and for how long, as the FTP server says
`421` (a bare "Authentication failed" made a partner behind that address doubt a right
password). Only the "sftp" subsystem, only after login, a few channels at a time;
an `exec` (legacy `scp -O`, or a command) is answered with a clear message on stderr and a
non-zero exit status instead of a bare refusal. Passwords are never logged.

A login holds at most a few sessions at once (`push.sessions`). A right password over that
limit fails the login with a banner saying why, and the server then disconnects with the same
reason (SSH_DISCONNECT_TOO_MANY_CONNECTIONS): a client shows one or the other. A key login
counts once paramiko has checked its signature (its first look at a key is unsigned, and a
public key is no secret: nobody may take a login's sessions by showing it), so over the limit
its channels are refused and the server disconnects with the reason."""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import paramiko
from paramiko import common as _common

from connectbatch.models import Method
from connectbatch.transfer.push.gateway import Account
from connectbatch.transfer.push.quota import PushQuota
from connectbatch.transfer.push.sessions import SessionTicket, too_many_sessions

if TYPE_CHECKING:
    from connectbatch.transfer.push.sftp.server import HostedSftpServer

log = logging.getLogger("connectbatch.transfer.push.sftp")

AUTH_SUCCESSFUL: int = paramiko.AUTH_SUCCESSFUL
AUTH_FAILED: int = paramiko.AUTH_FAILED
OPEN_SUCCEEDED: int = paramiko.OPEN_SUCCEEDED
OPEN_REFUSED: int = paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
MAX_AUTH_FAILURES = 3
AUTH_FAILURE_SECONDS = 0.5  # every failed login takes this long: a password-hash check (~25-60 ms) or not
MAX_CHANNELS_PER_SESSION = 4
# Channels of any kind one connection may hold open at once. OpenSSH's sftp and scp open one,
# tools that open an SFTP channel per file close each before the next; a client that only
# opens channels (3,000 took the server from 13 to 76 threads) is told it is out of room.
MAX_OPEN_CHANNELS = 16
OPEN_NO_ROOM: int = paramiko.OPEN_FAILED_RESOURCE_SHORTAGE
MAX_KEY_TRIES = 6  # public keys a client may offer per connection (as sshd's MaxAuthTries)
LEGACY_SCP = "legacy scp protocol is not supported: use scp without -O (SFTP) or sftp\n"
NO_COMMANDS = "this server only speaks SFTP: use sftp, or scp without -O\n"
# A login we could not check (the database busy or failing): the FTP server's 421 in words.
LOGIN_UNAVAILABLE = "login is unavailable right now; try again later"
USERAUTH_BANNER: bytes = _common.cMSG_USERAUTH_BANNER
DISCONNECT: bytes = _common.cMSG_DISCONNECT
DISCONNECT_TOO_MANY_CONNECTIONS = 12  # RFC 4253 11.1 (paramiko names only a few reason codes)
DISCONNECT_BY_APPLICATION = 11


def address_refused(seconds: float) -> str:
    """What a client is told while its address may not try passwords (`FailedLogins`)."""
    minutes = max(1, math.ceil(seconds / 60))
    return (
        "Too many failed logins from your address: logins from it are refused for "
        f"{minutes} more minute{'s' if minutes > 1 else ''}; try again then."
    )


class AccountGateway(Protocol):
    """What the server needs from the rest of ConnectBatch (`gateway.Gateway` provides it)."""

    def authenticate(self, username: str, password: str) -> Account | None: ...

    def authenticate_key(self, username: str, key_type: str, key_blob: bytes) -> Account | None: ...

    def upload_complete(self, account: Account, path: Path) -> object: ...

    def upload_over_quota(self, account: Account, path: Path) -> None: ...

    @property
    def quota(self) -> PushQuota: ...


class Login(paramiko.ServerInterface):  # type: ignore[misc]
    """One client connection's view of authentication and channel requests."""

    def __init__(
        self, server: HostedSftpServer, peer: str, transport: paramiko.Transport | None = None
    ) -> None:
        self.server = server
        self.peer = peer
        self.address = peer.rsplit(":", 1)[0]
        self.transport = transport
        self._account: Account | None = None
        self._key_account: Account | None = None  # proven only once the transport says so
        self._key_login: tuple[str, bytes] | None = None
        self.failures = 0
        self.key_tries = 0
        self.locked_out = threading.Event()
        self.over_limit = threading.Event()  # a logged-in session one too many for its login
        # The login's credential or connection was deleted while this session was in: said
        # to the client, then the server's loop disconnects (`revoke`).
        self.revoked = ""
        self.ending = threading.Event()  # set with any of these: the server's loop wakes at once
        self.ticket: SessionTicket | None = None
        self._released = False  # the connection ended: a late request takes no place again
        self.channels: list[Any] = []
        self._lock = threading.Lock()

    @property
    def account(self) -> Account | None:
        """The logged-in account. A key login counts only once paramiko has checked the
        signature: it asks `check_auth_publickey` about an unsigned key first."""
        if self._account is not None:
            return self._account
        if self._key_account is not None and self.transport is not None and self.transport.is_authenticated():
            return self._key_account
        return None

    @account.setter
    def account(self, value: Account | None) -> None:
        self._account = value

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_none(self, username: str) -> int:
        return AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        """A public key provisioned for this login (`credentials add-key`). Failures are not
        padded: a public key is no secret to guess, and clients offer several in a row."""
        if self.account is not None or self.key_tries >= MAX_KEY_TRIES or self.over_limit.is_set():
            return AUTH_FAILED
        blob = key.asbytes()
        if self._key_account is not None and self._key_login == (username, blob):
            return AUTH_SUCCESSFUL  # the signed retry of the key we just accepted unsigned
        self._key_account, self._key_login = None, None
        self.key_tries += 1
        account: Account | None = None
        lookup = getattr(self.server.gateway, "authenticate_key", None)
        try:
            if lookup is not None:
                account = lookup(username, key.get_name(), blob)
        except Exception:
            self.server.quiet.log(
                "login-error",
                logging.ERROR,
                "key check failed for user %r from %s",
                username,
                self.peer,
                exc_info=True,
            )
            self._tell(LOGIN_UNAVAILABLE)
        if account is None or not _method_ok(account):
            return AUTH_FAILED
        self._key_account, self._key_login = account, (username, blob)
        log.info(
            "login %r from %s by key %s (connection %s, %s)",
            username,
            self.peer,
            key.fingerprint,
            account.connection_id,
            "read/write" if account.writable else "read-only",
        )
        return AUTH_SUCCESSFUL

    def check_auth_password(self, username: str, password: str) -> int:
        """Ask the gateway; pad every failure to the same duration, close after three."""
        started = time.monotonic()
        if self.failures >= MAX_AUTH_FAILURES or self.account is not None or self.over_limit.is_set():
            return AUTH_FAILED
        account: Account | None = None
        wait = self.server.failed_logins.blocked_for(self.address)
        throttled = wait > 0
        if throttled:
            self._tell(address_refused(wait))
        else:
            try:
                account = self.server.gateway.authenticate(username, password)
            except Exception:  # a store error: refused, never a crashed session, but no failure
                self.server.quiet.log(
                    "login-error",
                    logging.ERROR,
                    "login check failed for user %r from %s",
                    username,
                    self.peer,
                    exc_info=True,
                )
                # Nothing was checked: not a wrong password for the partner to doubt, nor one
                # that counts towards closing the session or refusing the address.
                self._tell(LOGIN_UNAVAILABLE)
                return AUTH_FAILED
        if account is not None and not _method_ok(account):
            account = None  # e.g. an FTP login tried over SFTP: as wrong as a wrong password
        if account is not None:
            self.account = account
            if not self.admitted():  # a right password, one session too many: not a failure
                self.account = None
                self._tell(too_many_sessions(self.server.login_sessions.per_login))
                return AUTH_FAILED
            log.info(
                "login %r from %s (connection %s, %s)",
                username,
                self.peer,
                account.connection_id,
                "read/write" if account.writable else "read-only",
            )
            return AUTH_SUCCESSFUL
        # Unknown users fail in microseconds, wrong passwords after a password-hash check (~25-60 ms):
        # sleeping every failure to the same floor keeps timing from telling which users exist.
        remaining = AUTH_FAILURE_SECONDS - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        self.failures += 1
        if throttled:  # nothing was checked: not counted again, so the time told stays true
            lately = f"address refused unchecked for {wait:.0f} s more"
        else:
            lately = f"{self.server.failed_logins.failed(self.address)} from that address lately"
        self.server.quiet.log(
            "failed-login",
            logging.WARNING,
            "failed login %d/%d for user %r from %s (%s)",
            self.failures,
            MAX_AUTH_FAILURES,
            username,
            self.peer,
            lately,
        )
        if self.failures >= MAX_AUTH_FAILURES:
            self.locked_out.set()
            self.ending.set()
        return AUTH_FAILED

    def admitted(self) -> bool:
        """Whether this logged-in connection holds one of its login's sessions, taking one
        the first time it is asked (the password check, or the first channel or look of the
        server's loop after a key login). False before login, and once over the limit (said
        once in the log, through the rate budget; the server's loop then disconnects)."""
        with self._lock:
            if self.ticket is not None:
                return True
            account = self.account
            if account is None or self.over_limit.is_set() or self._released:
                return False
            sessions = self.server.login_sessions
            self.ticket = sessions.open(account.username)
            if self.ticket is not None:
                return True
            self.over_limit.set()
            self.ending.set()
        self.server.quiet.log(
            "session-limit",
            logging.WARNING,
            "refused a session of login %r from %s: it already holds %d "
            "(CONNECTBATCH_MAX_SESSIONS_PER_LOGIN)",
            account.username,
            self.peer,
            sessions.per_login,
        )
        return False

    def release(self) -> None:
        """The connection ended, however: its login's session is free again."""
        with self._lock:
            ticket, self.ticket = self.ticket, None
            self._released = True
        self.server.login_sessions.close(ticket)

    def _tell(self, message: str) -> None:
        """A banner during login (RFC 4252 5.4: any time before success): what OpenSSH's
        client prints and paramiko's keeps (`Transport.get_banner()`)."""
        if self.transport is None:
            return
        banner = paramiko.Message()
        banner.add_byte(USERAUTH_BANNER)
        banner.add_string(message + "\n")
        banner.add_string("en")
        try:
            self.transport._send_message(banner)
        except Exception:  # the client went away: the disconnect says it again, or nobody
            log.debug("could not send a banner to %s", self.peer, exc_info=True)

    def revoke(self, why: str) -> None:
        """The session's login or connection is gone: the server's loop ends the session (after
        the refused request's reply went out) with this reason."""
        with self._lock:
            self.revoked = self.revoked or why
        self.ending.set()

    def disconnect(self, message: str, reason: int = DISCONNECT_TOO_MANY_CONNECTIONS) -> None:
        """Say why before the server closes the transport (SSH_MSG_DISCONNECT with a reason)."""
        if self.transport is None:
            return
        goodbye = paramiko.Message()
        goodbye.add_byte(DISCONNECT)
        goodbye.add_int(reason)
        goodbye.add_string(message)
        goodbye.add_string("en")
        try:
            self.transport._send_message(goodbye)
        except Exception:
            log.debug("could not send a disconnect to %s", self.peer, exc_info=True)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind != "session" or self.account is None or not self.admitted():
            return OPEN_REFUSED
        held = self._open_channels()
        if held >= MAX_OPEN_CHANNELS:
            log.warning("refused another channel for %s: %d open", self.peer, held)
            return OPEN_NO_ROOM
        return OPEN_SUCCEEDED

    def _open_channels(self) -> int:
        """Channels of this connection not closed yet: paramiko keeps them in the transport's
        private `_channels` map until they close (pinned in tests/unit/test_paramiko_contract.py)."""
        channels = getattr(self.transport, "_channels", None)
        return len(channels.values()) if channels is not None else 0

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

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        """Say why instead of a bare refusal: legacy `scp -O` runs `scp -t`/`scp -f`, which
        we do not speak; the client prints our stderr and exits non-zero."""
        if self.account is None:
            return False
        text = command.decode("utf-8", "replace") if isinstance(command, bytes) else str(command)
        message = LEGACY_SCP if text.split()[:1] == ["scp"] else NO_COMMANDS
        threading.Thread(target=_refuse_on, args=(channel, message), daemon=True).start()
        return True

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        if self.account is None:
            return False
        threading.Thread(target=_refuse_on, args=(channel, NO_COMMANDS), daemon=True).start()
        return True


def _method_ok(account: Account) -> bool:
    return account.method is Method.SFTP


def _refuse_on(channel: paramiko.Channel, message: str) -> None:
    """Message on stderr, exit status 1, close: sent after paramiko's reply to the request
    (it replies once our handler returns, hence the thread and the short wait)."""
    try:
        time.sleep(0.05)
        channel.send_stderr(message.encode())
        channel.send_exit_status(1)
        channel.shutdown_write()
        time.sleep(0.05)
        channel.close()
    except Exception:  # the client went away: nothing to tell
        log.debug("could not refuse a command on %s", channel, exc_info=True)
