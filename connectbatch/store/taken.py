"""Which remote files earlier runs settled, asked once for a whole listing.

A pull decides for every listed file matching the pattern whether an earlier run settled it
(loaded, duplicate, held, rejected as a whole, discarded: `runs.taken_before`). Asked file by
file, that was a statement (and a database open when the file had been let go) per listed
file: a partner who leaves every file in the folder made each poll of a 200,000-file folder
take minutes (found by an audit of pulls). `Settled.of` reads the ledger lines of all the
listed paths in one statement, and `Settled.taken_before` answers each file from them as the
single-file query does.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

import duckdb

from connectbatch.models import FileRecord, FileState

# What an earlier run left a remote file in when it is not to be taken again: the same path,
# size and time is not fetched again (a file rejected as a whole would fail the same way).
SETTLED = (
    FileState.LOADED,
    FileState.DUPLICATE,
    FileState.QUARANTINED,
    FileState.REJECTED,
    FileState.DISCARDED,
)


class Line(Protocol):
    """What a settled ledger line needs here: a FileRecord, or a distributed worker's copy."""

    @property
    def id(self) -> int: ...
    @property
    def remote_path(self) -> str | None: ...
    @property
    def size(self) -> int | None: ...
    @property
    def mtime(self) -> dt.datetime | None: ...


L = TypeVar("L", bound=Line)


class Settled(Generic[L]):
    """The settled ledger lines of some remote paths of one connection, by path, in id order
    (a distributed pull worker builds one from the coordinator's copy: `distributed.tasks`)."""

    def __init__(self, records: Iterable[L]) -> None:
        self._by_path: dict[str, list[L]] = defaultdict(list)
        for record in sorted(records, key=lambda r: r.id):
            if record.remote_path is not None:
                self._by_path[record.remote_path].append(record)

    @staticmethod
    def of(con: duckdb.DuckDBPyConnection, connection_id: int, paths: Iterable[str]) -> Settled[FileRecord]:
        from connectbatch.store.runs import files_where  # runs builds on this module

        wanted = sorted(set(paths))
        if not wanted:
            return Settled(())
        states = ", ".join("?" * len(SETTLED))
        return Settled(
            files_where(
                con,
                "WHERE connection_id = ? AND remote_path IN (SELECT unnest(?::VARCHAR[])) "
                f"AND state IN ({states})",
                [connection_id, wanted, *map(str, SETTLED)],
            )
        )

    def taken_before(
        self, path: str, size: int | None, mtime: dt.datetime | None, *, by_day: bool = False
    ) -> L | None:
        """The first settled line of this path, size and time (see `runs.taken_before`): a size
        of None matches any size when the time is known; `by_day`, any time on that UTC date."""
        any_size = size is None and mtime is not None
        for record in self._by_path.get(path, ()):
            if not any_size and record.size != size:
                continue
            if _same_time(record.mtime, mtime, by_day):
                return record
        return None


class Skipped:
    """The skip lines of some remote paths of one connection (`runs.skipped_before` for a whole
    listing, in one statement): a pull records a file it does not take once per reason, and a
    poll of a folder of 2,000 files younger than the minimum age asked the ledger 2,000 times
    whether it had, every poll."""

    def __init__(self, records: Iterable[FileRecord]) -> None:
        self._by_path: dict[str, list[FileRecord]] = defaultdict(list)
        for record in sorted(records, key=lambda r: r.id):
            if record.remote_path is not None:
                self._by_path[record.remote_path].append(record)

    @staticmethod
    def of(con: duckdb.DuckDBPyConnection, connection_id: int, paths: Iterable[str]) -> Skipped:
        """The skip lines of `paths` (`of_listing`'s, for a caller asking of a path or two)."""
        return of_listing(con, connection_id, paths)[1]

    def before(
        self, path: str, size: int | None, mtime: dt.datetime | None, message: str, *, by_day: bool = False
    ) -> FileRecord | None:
        """The first line that skipped this path, size (None is a size too) and time (`by_day`:
        any on that UTC date) for the same reason."""
        for record in self._by_path.get(path, ()):
            if record.size == size and record.message == message and _same_time(record.mtime, mtime, by_day):
                return record
        return None


def of_listing(
    con: duckdb.DuckDBPyConnection, connection_id: int, paths: Iterable[str]
) -> tuple[Settled[FileRecord], Skipped]:
    """What earlier runs settled and skipped of these paths, in one statement: all a pull asks
    the ledger about a listing before it decides what to fetch."""
    from connectbatch.store.runs import files_where  # runs builds on this module

    wanted = sorted(set(paths))
    if not wanted:
        return Settled(()), Skipped(())
    states = [*map(str, SETTLED), str(FileState.SKIPPED)]
    found = files_where(
        con,
        "WHERE connection_id = ? AND remote_path IN (SELECT unnest(?::VARCHAR[])) "
        f"AND state IN ({', '.join('?' * len(states))})",
        [connection_id, wanted, *states],
    )
    skips = [record for record in found if record.state == FileState.SKIPPED]
    return Settled(r for r in found if r.state != FileState.SKIPPED), Skipped(skips)


def _same_time(recorded: dt.datetime | None, listed: dt.datetime | None, by_day: bool) -> bool:
    """Whether a recorded time is the listed one (or on its UTC date, `by_day`); None is a
    time too (IS NOT DISTINCT FROM)."""
    if recorded is None or listed is None:
        return recorded is None and listed is None
    recorded, listed = _utc(recorded), _utc(listed)
    if by_day:
        return recorded.date() == listed.date()
    return recorded == listed


def _utc(when: dt.datetime) -> dt.datetime:
    """Aware in UTC; a naive time is read as UTC, as the database's session reads one."""
    return (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
