"""The anchor: one open DuckDB connection that operations take cheap cursors on.

Opening a DuckDB file is what costs (~15 ms on a small file, ~35-90 ms on a large one, and a
checkpoint when the last connection closes), while a cursor on an open connection costs
~0.1 ms. So the first operation opens the file, every operation after it takes a cursor, and
the file is closed again `linger` seconds after the last operation: a burst of operations (a
file's ingest, a stream of small files, a page of the app) opens it once (issue 13), and an
idle process leaves the file free for the others, as DuckDB allows one writing process.

Another process that finds the file locked says so: while it waits it keeps a marker file
`<db>.waiting-<pid>` beside the database (`waiting`). The holder looks for markers when it
is between operations (at most every LOOK_EVERY_S) and then closes the file at once (and at
least every `linger` seconds during a long operation's idle stretches), so a CLI command beside a busy
`connectbatch serve` gets its turn instead of timing out. `held()` keeps the file open across
a stretch without operations (a big file's parse) unless someone waits.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

# DuckDB (2.0) races when one thread opens a file while another closes the last connection
# to it ("Unique file handle conflict", lost table functions): open and close one at a time.
OPEN_CLOSE = threading.Lock()

WAITING = ".waiting-"

# How long a give-back trusts the last look for waiting processes. Listing the folder on
# every give-back cost ~1 ms a small file (five give-backs); a waiter now gets the file at
# most this much later, and the linger timer always looks afresh.
LOOK_EVERY_S = 0.2


class Anchor:
    """Keeps one connection to a database file open while it is in use (see the module)."""

    def __init__(self, path: Path, opener: Callable[[], duckdb.DuckDBPyConnection], linger: float) -> None:
        self.path = path
        self.linger = linger  # seconds the file stays open after the last operation (0: closed at once)
        self._opener = opener
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._users = 0  # cursors handed out and not yet given back
        self._holds = 0  # `held()` blocks under way
        self._last_used = 0.0  # when the last cursor was given back
        self._timer_pending = False  # one linger timer at a time, re-armed while needed
        self.poisoned = False  # a DuckDB error went through: reopen rather than reuse the instance
        self._quiet_since = -LOOK_EVERY_S  # when the folder last showed no waiter (monotonic)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own (transactions included) on the open file; open it if needed."""
        with self._lock:
            if self._con is None:
                self._con = self._opener()
                self.poisoned = False
            self._users += 1
            try:
                with OPEN_CLOSE:
                    return self._con.cursor()
            except BaseException:
                self._users -= 1
                self.poisoned = True
                self._idle()
                raise

    def give_back(self, cursor: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            with OPEN_CLOSE:
                cursor.close()
            self._users -= 1
            self._last_used = time.monotonic()
            self._idle()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep the file open through this block, between its operations too (unless another
        process waits for it): one open for a whole file's ingest."""
        with self._lock:
            self._holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                self._last_used = time.monotonic()
                self._idle()

    def close(self) -> None:
        """Close the file now if no operation is using it."""
        with self._lock:
            if self._users == 0:
                self._close()

    def _idle(self) -> None:
        """Between operations (the caller holds the lock): close now, or arm the linger timer."""
        if self._users or self._con is None:
            return
        if self.poisoned or (self._holds == 0 and self.linger <= 0) or self._someone_waits():
            self._close()
        elif not self._timer_pending:
            self._arm(self._recheck())

    def _someone_waits(self) -> bool:
        """`waiting`, but answered from the last look if it found no waiter under
        LOOK_EVERY_S ago (the caller holds the lock)."""
        now = time.monotonic()
        if now - self._quiet_since < LOOK_EVERY_S:
            return False
        if waiting(self.path):
            return True
        self._quiet_since = now
        return False

    def _recheck(self) -> float:
        """How often a held or lingering file looks for waiting processes."""
        return max(self.linger, 0.25)

    def _arm(self, seconds: float) -> None:
        # Starting a thread costs ~1 ms: one timer at a time, not one per operation.
        self._timer_pending = True
        timer = threading.Timer(seconds, self._expire)
        timer.daemon = True
        timer.start()

    def _expire(self) -> None:
        """The linger timer: close the file once it has been idle for `linger` seconds and no
        `held()` block keeps it (or at once when another process waits), else look again later."""
        with self._lock:
            self._timer_pending = False
            if self._con is None or self._users:
                return  # closed already, or in use: the next give-back arms a timer
            idle = time.monotonic() - self._last_used
            if waiting(self.path) or (self._holds == 0 and idle >= self.linger):
                self._close()
            else:
                self._arm(self._recheck() if self._holds else self.linger - idle)

    def _close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with OPEN_CLOSE, contextlib.suppress(duckdb.Error):
                con.close()  # DuckDB checkpoints and frees the file


# A marker of another host (or container: another pid namespace) counts while its waiter
# keeps touching it (at every try, `refresh`), as its pid means nothing here.
FOREIGN_FRESH_S = 10.0


def waiting(database: Path) -> bool:
    """Whether a live process other than this one waits to open the file. A marker is
    `<db>.waiting-<pid>-<node tag>` (a marker without a tag is an older release's, of this
    host): this node's is judged by its pid, another node's by its age."""
    prefix = database.name + WAITING
    try:
        entries = os.scandir(database.parent)
    except OSError:
        return False
    with entries:
        for entry in entries:
            if entry.name.startswith(prefix):
                pid, _, tag = entry.name[len(prefix) :].partition("-")
                if not pid.isdigit() or (int(pid) == os.getpid() and tag in ("", node_tag())):
                    continue
                if tag and tag != node_tag():
                    with contextlib.suppress(OSError):
                        if time.time() - entry.stat().st_mtime < FOREIGN_FRESH_S:
                            return True
                elif alive(int(pid)):
                    return True
                # a waiter killed while it waited: its marker goes (so a later process with
                # the same id is not taken for a waiter)
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    return False


@functools.cache
def node_tag() -> str:
    """A short name of this host and pid namespace (`liveness.node`) for waiting markers."""
    from connectbatch.store.liveness import node  # liveness builds on this module

    return hashlib.sha256(node().encode()).hexdigest()[:12]


@contextmanager
def marked_waiting(database: Path) -> Iterator[Callable[[], None]]:
    """Say that this process waits for the file (the holder closes it between operations);
    gives `refresh`, to call at every try: another host's holder counts a fresh marker only."""
    marker = database.with_name(f"{database.name}{WAITING}{os.getpid()}-{node_tag()}")

    def refresh() -> None:
        with contextlib.suppress(OSError):  # a read-only or full folder: the linger still frees it
            marker.touch(mode=0o600)

    refresh()
    try:
        yield refresh
    finally:
        marker.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
