"""Whether a run In Progress is still alive, on one machine or several sharing the store.

A pid means something only in the pid namespace that gave it: in distributed mode (several
hosts or containers sharing the data folder) a run another host started has a pid that is
absent here (its live run was Failed as dead) or belongs to an unrelated process here (its
dead run stayed In Progress); and on one host a pid used again by another process kept a dead
run In Progress for ever. So a run records who runs it (`node`: host name, boot and pid
namespace; the pid; the process's start time), and that process beats (`Heartbeat`, a row in
`run_beats` every HEARTBEAT_SECONDS while it has runs In Progress). A run is dead when:
- it is of this node: its pid is gone, or is another process (another start time);
- it is of another node: neither its start nor its process's last beat is within
  STALE_SECONDS (generous: a beat waits for the database like any operation, and a run
  wrongly failed is worse than a dead one noticed a few minutes late).
Runs recorded before these columns (host NULL) are judged by their pid, as they were.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from connectbatch.errors import RunInProgressError
from connectbatch.models import RunStatus
from connectbatch.store.anchor import alive

if TYPE_CHECKING:
    from connectbatch.store.db import Database

log = logging.getLogger("connectbatch.store.liveness")

HEARTBEAT_SECONDS = 10.0  # how often a process with runs In Progress says it is alive
STALE_SECONDS = 300.0  # a run of another host not heard of for this long is dead


@functools.cache
def node() -> str:
    """This machine, its boot and its pid namespace: where a pid means this process."""
    parts = [socket.gethostname()]
    for where, read in (("/proc/sys/kernel/random/boot_id", _read), ("/proc/self/ns/pid", os.readlink)):
        try:
            parts.append(read(where).strip())
        except OSError:
            parts.append("?")
    return " ".join(parts)


def _read(path: str) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read()


def process_start(pid: int) -> int:
    """When the process started (clock ticks after boot, /proc/<pid>/stat field 22); 0 when
    unknown (no /proc): then the pid alone tells."""
    try:
        stat = _read(f"/proc/{pid}/stat")
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def me() -> tuple[str, int, int]:
    """(node, pid, start) of this process, as a run records it."""
    pid = os.getpid()
    return node(), pid, _start_of(pid)


@functools.cache
def _start_of(pid: int) -> int:  # by pid: a forked child asks again
    return process_start(pid)


@dataclass(frozen=True)
class Seen:
    """A run In Progress as liveness judges it."""

    run_id: int
    connection_id: int
    pid: int | None
    host: str | None
    pid_start: int | None
    last_seen: dt.datetime  # its start, or its process's last beat when later


_SEEN = (
    "SELECT r.id, r.connection_id, r.pid, r.host, r.pid_start, "
    "greatest(r.started_at, coalesce(b.beat_at, r.started_at)) FROM runs r LEFT JOIN run_beats b "
    "ON b.host = r.host AND b.pid = r.pid AND b.pid_start = r.pid_start"
)


def in_progress(con: duckdb.DuckDBPyConnection, connection_id: int | None = None) -> list[Seen]:
    """The runs In Progress (of one connection), with what tells whether they are alive.

    Every run's start asks this, and almost always nothing is In Progress: a plain look at
    `runs` answers that case, and the join with the beats runs only when there is a run to
    judge (the join cost ~5 % of a small file's ingest)."""
    where = " WHERE r.status = ?"
    params: list[object] = [str(RunStatus.IN_PROGRESS)]
    if connection_id is not None:
        where, params = where + " AND r.connection_id = ?", [*params, connection_id]
    if con.execute("SELECT 1 FROM runs r" + where + " LIMIT 1", params).fetchone() is None:
        return []
    return [Seen(*row) for row in con.execute(_SEEN + where + " ORDER BY r.id", params).fetchall()]


def dead(seen: Seen, *, ours: bool = False, now: dt.datetime | None = None) -> bool:
    """Whether the run's process is gone (see the module). `ours`: at a start, a run of a
    release before this one under this process's own pid is a dead one's (an id used again, as
    PID 1 in a container); a run recording its start time needs no such guess."""
    if seen.host is None:  # recorded before hosts were: its pid, as then
        return not (seen.pid and (not ours or seen.pid != os.getpid()) and alive(seen.pid))
    here, pid, start = me()
    if seen.host == here:
        if not seen.pid:
            return True
        if seen.pid == pid:  # this process, or one before it under the same pid
            return seen.pid_start != start if seen.pid_start and start else ours
        if not alive(seen.pid):
            return True
        now_start = process_start(seen.pid)
        return bool(seen.pid_start) and bool(now_start) and now_start != seen.pid_start
    now = now or dt.datetime.now(dt.UTC)
    return now - seen.last_seen > dt.timedelta(seconds=STALE_SECONDS)


def refuse_while_going(con: duckdb.DuckDBPyConnection, connection_id: int, name: str) -> None:
    """Refuse a new run (RunInProgressError) while a live process has one for the connection."""
    for other in in_progress(con, connection_id):
        if not dead(other):
            raise RunInProgressError(f"run {other.run_id} of {name!r} is still in progress")


_BEAT = (
    "INSERT INTO run_beats (host, pid, pid_start, beat_at) SELECT ?, ?, ?, current_timestamp "
    "WHERE EXISTS (SELECT 1 FROM runs WHERE status = ? AND host = ? AND pid = ? AND pid_start = ?) "
    "ON CONFLICT (host, pid, pid_start) DO UPDATE SET beat_at = excluded.beat_at RETURNING pid"
)


def beat(con: duckdb.DuckDBPyConnection) -> bool:
    """Say this process is alive if it has runs In Progress (one statement); whether it has."""
    here, pid, start = me()
    rows = con.execute(_BEAT, [here, pid, start, str(RunStatus.IN_PROGRESS), here, pid, start]).fetchall()
    return bool(rows)


class Heartbeat:
    """A thread beating for one database's runs of this process, started by the first run
    (`running`) and ending at a beat that finds none and no run started since the last one.
    Runs on no hot path: a run's start only sets a flag (and starts the thread when idle)."""

    def __init__(self, db: Database, every: float = HEARTBEAT_SECONDS) -> None:
        self._db = weakref.ref(db)
        self.every = every
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._asked = False  # a run started since the last beat (its commit may come later)

    def running(self) -> None:
        """A run of this process starts: beat for it."""
        with self._lock:
            self._asked = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="run-heartbeat", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        stop = threading.Event()
        failures = 0
        while True:
            stop.wait(self.every)
            with self._lock:
                asked, self._asked = self._asked, False
            db = self._db()
            some = False
            if db is not None:
                try:
                    with db.transaction() as con:
                        some = beat(con)
                    failures = 0
                except duckdb.CatalogException:
                    # A database without run_beats (one of a release before it, opened by an
                    # upgrade check): nothing to beat into, now or at any later beat.
                    some = False
                except Exception as exc:  # tried again at the next beat; STALE_SECONDS allows many
                    log.warning("could not write the runs' heartbeat: %s", exc)
                    failures += 1
                    some = failures * self.every < STALE_SECONDS  # then: the database is gone
            with self._lock:
                if db is None or (not some and not asked and not self._asked):
                    self._thread = None
                    return
            del db  # not kept while waiting: a database nobody uses any more ends the thread


_BEATS: weakref.WeakKeyDictionary[Database, Heartbeat] = weakref.WeakKeyDictionary()
_BEATS_LOCK = threading.Lock()


def running(db: Database) -> None:
    """A run of this process opens on `db`: make sure its heartbeat goes."""
    with _BEATS_LOCK:
        heartbeat = _BEATS.get(db)
        if heartbeat is None:
            heartbeat = _BEATS[db] = Heartbeat(db)
    heartbeat.running()


def link_taken_again(con: duckdb.DuckDBPyConnection, run_id: int) -> None:
    """A dead process's push run just failed: a later push run that took its bytes in already
    (a `serve` restarted at once, before its recovery) is its retry, as `retry_of_interrupted`
    records it otherwise; else a Failed run offered a retry beside the loaded one (audit)."""
    con.execute(
        "UPDATE runs SET retry_of = ? WHERE id = (SELECT min(later.run_id) FROM files dead "
        "JOIN files later ON later.connection_id = dead.connection_id AND later.sha256 = dead.sha256 "
        "AND later.run_id > dead.run_id JOIN runs r ON r.id = later.run_id AND r.trigger = 'push' "
        "AND r.retry_of IS NULL WHERE dead.run_id = ?) "
        "AND EXISTS (SELECT 1 FROM runs WHERE id = ? AND trigger = 'push') "
        "AND NOT EXISTS (SELECT 1 FROM runs WHERE retry_of = ?)",
        [run_id, run_id, run_id, run_id],
    )
