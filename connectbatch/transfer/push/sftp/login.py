"""Login hygiene for one SSH connection (paramiko's `ServerInterface`): password logins only,
through the gateway; every failure padded to the same duration whether the user exists or not;
locked out after three failures; only the "sftp" subsystem, only after login, a few channels at
a time. Passwords are never logged."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import paramiko

from connectbatch.transfer.push.gateway import Account

if TYPE_CHECKING:
    from connectbatch.transfer.push.sftp.server import HostedSftpServer

log = logging.getLogger("connectbatch.transfer.push.sftp")

AUTH_SUCCESSFUL: int = paramiko.AUTH_SUCCESSFUL
AUTH_FAILED: int = paramiko.AUTH_FAILED
OPEN_SUCCEEDED: int = paramiko.OPEN_SUCCEEDED
OPEN_REFUSED: int = paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
MAX_AUTH_FAILURES = 3
AUTH_FAILURE_SECONDS = 0.5  # every failed login takes this long: scrypt (~60 ms) or not
MAX_CHANNELS_PER_SESSION = 4


class AccountGateway(Protocol):
    """What the server needs from the rest of ConnectBatch (`gateway.Gateway` provides it)."""

    def authenticate(self, username: str, password: str) -> Account | None: ...

    def upload_complete(self, account: Account, path: Path) -> object: ...


class Login(paramiko.ServerInterface):  # type: ignore[misc]
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
