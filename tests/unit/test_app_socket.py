"""The app server's connections send small answers at once: asyncio's TCP_NODELAY also on
the sockets Streamlit's server binds with protocol number 0 (connectbatch.app_socket). Before,
each answer of a kept-alive connection waited 40 ms for the browser's delayed acknowledgement
(44 ms for a 3 KB module), ~0.6 s in all before a new session's login form."""

from __future__ import annotations

import asyncio.base_events as base_events
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectbatch import app_socket

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restored() -> Iterator[None]:
    """asyncio's own hook during the test (another test may have imported the app server,
    which enables ours for the whole process), and whatever was there afterwards."""
    before = base_events._set_nodelay  # type: ignore[attr-defined]
    base_events._set_nodelay = getattr(before, "__wrapped__", before)  # type: ignore[attr-defined]
    yield
    base_events._set_nodelay = before  # type: ignore[attr-defined]


def _accepted_by_asyncio() -> tuple[socket.socket, socket.socket, socket.socket]:
    """A listener bound as Streamlit binds it (protocol number 0) and the socket it accepts,
    given to asyncio's hook as a transport is."""
    listener = socket.socket(socket.AF_INET)
    assert listener.proto == 0
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    base_events._set_nodelay(accepted)  # type: ignore[attr-defined]
    return listener, client, accepted


def _nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_asyncio_alone_leaves_nagle_on_for_a_protocol_zero_socket(restored: None) -> None:
    """Why the module exists: the hook asyncio calls for each connection skips such sockets."""
    sockets = _accepted_by_asyncio()
    try:
        assert _nodelay(sockets[2]) == 0
    finally:
        for s in sockets:
            s.close()


def test_enabled_hook_turns_nagle_off_for_a_protocol_zero_socket(restored: None) -> None:
    assert app_socket.enable()
    assert app_socket.enable()  # twice: one wrapper, not two
    assert not getattr(base_events._set_nodelay.__wrapped__, "_connectbatch_nodelay", False)  # type: ignore[attr-defined]
    sockets = _accepted_by_asyncio()
    try:
        assert _nodelay(sockets[2]) == 1
    finally:
        for s in sockets:
            s.close()


def test_other_sockets_are_left_alone(restored: None) -> None:
    app_socket.enable()
    left, right = socket.socketpair()  # AF_UNIX: no TCP options to set
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        base_events._set_nodelay(left)  # type: ignore[attr-defined]
        base_events._set_nodelay(udp)  # type: ignore[attr-defined]
    finally:
        for s in (left, right, udp):
            s.close()
    closed = socket.socket(socket.AF_INET)
    closed.close()
    app_socket.no_delay(closed)  # a connection already gone: nothing to do, no error


def test_the_app_server_enables_it_before_serving(restored: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn imports streamlit_asgi.py (the `make run` server) before it accepts a
    connection; importing it must switch the hook on."""
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.delitem(sys.modules, "streamlit_asgi", raising=False)
    __import__("streamlit_asgi")
    assert getattr(base_events._set_nodelay, "_connectbatch_nodelay", False)  # type: ignore[attr-defined]
