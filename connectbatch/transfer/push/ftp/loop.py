"""What every session of one hosted FTP server shares, and how other threads reach pyftpdlib's
single IO-loop thread (`LoopWaker`): password checks run in a thread pool and hand their
answer back here, so 20 partners logging in at once do not stall each other's transfers."""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pyftpdlib.ioloop import AsyncChat

from connectbatch.settings import MAX_SESSIONS_PER_LOGIN
from connectbatch.transfer.push.ftp.guard import AddressGuard
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.sessions import LoginSessions

log = logging.getLogger("connectbatch.transfer.push.ftp")


class LoopWaker(AsyncChat):  # type: ignore[misc]  # pyftpdlib is untyped
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
class ServerContext:
    """What every session of one server shares: the gateway, the login machinery, the
    per-address guard (used on the loop thread only) and the sessions per login."""

    gateway: Gateway
    waker: LoopWaker
    login_pool: ThreadPoolExecutor
    checking: set[Any] = field(default_factory=set)  # sessions waiting for a password check
    guard: AddressGuard = field(default_factory=AddressGuard)
    preauth_timeout: float = 30.0  # seconds; 0: no limit
    upload_settle: float = 0.3  # seconds the control connection must outlive a STOR's data
    sessions: LoginSessions = field(default_factory=lambda: LoginSessions(MAX_SESSIONS_PER_LOGIN))
