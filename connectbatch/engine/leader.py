"""Which engine schedules for a database: one at a time, the others stand by.

`connectbatch serve` and the app each start an engine. Two of them on one data folder (a
second `serve --no-servers`, or `serve` beside `make run`) each ran every cron job: every
scheduled pull ran twice (two Failed runs a minute against a server that was down, two
listings of the partner's server), the lock job, recovery, sync-back and the delivery
check twice. The run lock only kept the two pulls from overlapping, not from repeating.

The engine holding an exclusive `flock` on `<database>.engine` schedules; one that finds it
taken stands by and tries again every `STANDBY_SECONDS`, taking over when the holder stops
or dies (the kernel drops a dead process's lock, so nothing is left to expire). Hosted
servers, the outbox and Run now do not need it: they work in every engine. The lock is
per open file, so two engines of one process are kept apart too. A folder shared by
several hosts over a network file system is beyond it (distributed mode has its Redis lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path

STANDBY_SECONDS = 5.0  # how often a standing-by engine tries to take over


def lease_path(database: Path) -> Path:
    """The lock file of the engines of `database` (beside it: a custom database path has
    its own)."""
    return database.with_name(database.name + ".engine")


class Lease:
    """The exclusive right to schedule for one database, held until `release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lease if no other engine holds it; True when this one holds it now."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        # Who holds it, for the message of the engines that stand by.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> str:
        """The process holding the lease, as far as its file tells ("another process")."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.path.read_text(encoding="ascii").strip())
            return f"PID {pid}"
        return "another process"

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class Standby:
    """Waits in a thread for `lease` and calls `lead` once it holds it (unless stopped)."""

    def __init__(self, lease: Lease, lead: Callable[[], None], every: float = STANDBY_SECONDS) -> None:
        self._lease = lease
        self._lead = lead
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._wait, name="engine-standby", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _wait(self) -> None:
        while not self._stop.wait(self._every):
            if self._lease.acquire():
                self._lead()
                return
