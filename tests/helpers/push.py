"""What the tests of our hosted push servers share: a push connection with the login we
provision for it, and waiting for something a server does on its own."""

from __future__ import annotations

import time
from collections.abc import Callable

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Provisioned, Services

TIMEOUT = 20.0


def push_login(services: Services, name: str, method: Method) -> tuple[Connection, Provisioned]:
    """A call-conversions push connection over `method`, and its provisioned login."""
    connection, login = services.create_connection(
        Connection(
            name=name,
            data_type="call_conversions",
            direction=Direction.INBOUND,
            method=method,
            methodology=Methodology.PUSH,
        )
    )
    assert login is not None
    return connection, login


def eventually(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Wait for something the server does on its own, after a client left or an upload ended
    (no timing asserted: the deadline only keeps a broken server from hanging the suite)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)
