"""Free TCP ports for the servers the tests start, and for ports that must stay closed.

A port the kernel hands out for `bind(("127.0.0.1", 0))` is free only until the probe closes:
the server that binds it a moment later races every other process asking the same. In one
pytest process that race is rare, but `make test` runs the suite in several pytest-xdist
workers, each starting sshd, Dovecot, vsftpd, Redis and Streamlit, and a test that needs a
*closed* port (a relay that is down) could find another worker's server there. So each worker
takes its ports from a window of its own below the kernel's ephemeral range (which starts at
32768 on Linux), in turn, each checked free by binding it; a port comes round again only after
`WINDOW` others. Outside xdist the kernel chooses, as before.
"""

from __future__ import annotations

import itertools
import os
import socket

FIRST = 12000  # gw0 takes 12000-13999, gw1 14000-15999, ...: all below 32768
WINDOW = 2000
MAX_WORKERS = 10

_turns = itertools.count()


def worker_index() -> int | None:
    """0 for pytest-xdist's worker "gw0", 1 for "gw1", ...; None outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if name.startswith("gw") and name[2:].isdigit():
        return int(name[2:]) % MAX_WORKERS
    return None


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, in this worker's window (see the module's note)."""
    index = worker_index()
    if index is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            return int(probe.getsockname()[1])
    start = FIRST + index * WINDOW
    for _ in range(WINDOW):
        port = start + next(_turns) % WINDOW
        if _bindable(host, port):
            return port
    raise OSError(f"no free port in {start}-{start + WINDOW - 1} for xdist worker {index}")
