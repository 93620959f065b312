"""Ending the pulls in flight at once when the engine stops (`serve` on SIGTERM, the app).

A pull waiting on a server that accepted the connection and never answers sits in a socket
read until its timeout (30 s, per step); the engine's stop waited for it, so `serve` took half
a minute or more to end. The sockets a pull connects are recorded while it runs (`pulling`),
and `stop_all` shuts them down: the blocked read returns at once, the transport fails, and the
pull records a Failed run saying it was stopped (`STOPPED`), which a person can retry. A pull
stopped so connects nothing more (its transport's reconnect is refused).

The sockets are found through the interpreter's `socket.connect` audit event, the one place
all three transports pass through (paramiko on our own socket, ftplib's and imaplib's
`socket.create_connection`), before the connect blocks. The hook is installed once per
process and does nothing outside a pull. Wrapping in TLS detaches the connected socket, so
the TLS contexts of the FTPS and IMAP transports make `StoppableSSLSocket`s (`stoppable`),
recorded before their handshake, where a silent server holds implicit FTPS and IMAPS.

The same cut bounds every pull in time (`pulling(deadline)`): each step's timeout ends a read
that gets nothing, but a server that sends a byte now and then (or stalls a little less than
the timeout, again and again) never lets one run out, and the pull held its scheduler thread
(and its connection's next runs) for ever. Past the deadline its sockets are shut down the
same way, whatever step it is in, and its run is Failed saying so (`overdue`), retried later.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
from collections.abc import Iterator

STOPPED = "stopped: ConnectBatch was shutting down while this pull ran; retry it"


def overdue(deadline: float, setting: str = "CONNECTBATCH_PULL_DEADLINE") -> str:
    """The reason of a pull cut at its deadline; `setting` names what set it."""
    return (
        f"timed out: the pull was still going after {deadline:g} s ({setting}); "
        "the server stopped answering or sends too slowly. It is tried again at its next run"
    )


class Flight:
    """The sockets one pull connected, whether it was stopped, and why (`reason`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.stopped = False
        self.reason = STOPPED

    def add(self, sock: socket.socket) -> None:
        with self.lock:
            if self.stopped:
                raise ConnectionAbortedError(self.reason)
            self.sockets.append(sock)

    def stop(self, reason: str = STOPPED) -> None:
        with self.lock:
            if not self.stopped:  # the first cut says why
                self.reason = reason
            self.stopped = True
            for sock in self.sockets:
                # A closed (or TLS-detached) socket has no descriptor left: nothing to reach.
                with contextlib.suppress(OSError):
                    # the socket's own shutdown: a TLS socket's would drop its TLS state
                    # under the thread still reading it
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


_local = threading.local()
_pulls: set[Flight] = set()
_guard = threading.Lock()
_installed = False


def _record(sock: object) -> None:
    pull = getattr(_local, "pull", None)
    if pull is not None and isinstance(sock, socket.socket):
        pull.add(sock)


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        _record(args[0])


class StoppableSSLSocket(ssl.SSLSocket):
    """A TLS socket a pull's stop reaches (the plain one it wraps is detached from it)."""

    def do_handshake(self, block: bool = False) -> None:
        _record(self)
        super().do_handshake(block)


def stoppable(context: ssl.SSLContext) -> ssl.SSLContext:
    """`context`, making sockets `stop_all` can end (a documented SSLContext extension)."""
    context.sslsocket_class = StoppableSSLSocket
    return context


def _install() -> None:
    global _installed
    with _guard:
        if not _installed:
            sys.addaudithook(_audit)  # cannot be removed: it stays, idle outside pulls
            _installed = True


@contextlib.contextmanager
def pulling(deadline: float | None = None, reason: str | None = None) -> Iterator[Flight]:
    """The body of one pull: `stop_all` can end it, and so does its `deadline` (seconds),
    saying `reason` (by default `overdue(deadline)`). Not nested (the outer pull records,
    and its deadline holds)."""
    if getattr(_local, "pull", None) is not None:
        yield _local.pull
        return
    _install()
    pull = Flight()
    with _guard:
        _pulls.add(pull)
    _local.pull = pull
    timer = None
    if deadline is not None:
        timer = threading.Timer(deadline, pull.stop, kwargs={"reason": reason or overdue(deadline)})
        timer.name, timer.daemon = "pull-deadline", True
        timer.start()
    try:
        yield pull
    finally:
        if timer is not None:
            timer.cancel()
        _local.pull = None
        with _guard:
            _pulls.discard(pull)


def stop_all() -> int:
    """Stop every pull in flight in this process; how many there were."""
    with _guard:
        pulls = list(_pulls)
    for pull in pulls:
        pull.stop()
    return len(pulls)
