"""The app server's connections send a small answer at once (TCP_NODELAY).

asyncio turns Nagle's algorithm off on the TCP connections it serves, but only when the
socket's protocol number is IPPROTO_TCP (`asyncio.base_events._set_nodelay`). Streamlit's
server binds its listening socket itself, as `socket.socket(family)`, whose protocol number
is 0, and so do the sockets it accepts. So every answer written in two pieces (headers, then
a small body; one websocket message after another) waited for the browser's delayed
acknowledgement, 40 ms on Linux, on every request of a kept-alive connection: 44 ms for a
3 KB module instead of ~1 ms. A new browser session fetches ~80 such modules over six
connections, so it waited ~0.6 s before the login form was drawn (issue 13: page-ready time
in a new session). `enable()` makes asyncio do what it means to for such sockets too;
streamlit_asgi.py calls it when uvicorn imports the app, before the first connection.
"""

from __future__ import annotations

import asyncio.base_events as base_events
import contextlib
import functools
import logging
import socket
from collections.abc import Callable
from typing import Any

log = logging.getLogger("connectbatch.webapp")

_MARK = "_connectbatch_nodelay"


def no_delay(sock: socket.socket) -> None:
    """Nagle's algorithm off on `sock` when it is a TCP socket (whatever its protocol
    number says); a socket already closed is left as it is."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return
    with contextlib.suppress(OSError):  # the peer went away already: nothing left to send
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def enable() -> bool:
    """asyncio's TCP connections in this process get TCP_NODELAY whatever their socket's
    protocol number; False (and a warning in the log) when this Python has no such hook, so
    the app still starts, only slower."""
    original: Callable[[Any], None] | None = getattr(base_events, "_set_nodelay", None)
    if original is None:
        log.warning("this Python's asyncio has no _set_nodelay: answers may wait 40 ms each")
        return False
    if getattr(original, _MARK, False):
        return True

    @functools.wraps(original)
    def set_nodelay(sock: Any) -> None:
        original(sock)
        if isinstance(sock, socket.socket):
            no_delay(sock)

    setattr(set_nodelay, _MARK, True)
    base_events._set_nodelay = set_nodelay  # type: ignore[attr-defined]
    return True
