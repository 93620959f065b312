"""The DuckDB file: opening it safely beside other processes, and migrations.

DuckDB lets one process open a file read-write, and a read-only opener conflicts with it.
ConnectBatch does not keep the file open while it is idle: every operation takes a connection
(a cursor on one anchor connection, `store/anchor.py`), does its work in one transaction and
gives it back; the file is closed `linger` seconds after the last operation, or at once when
another process says it waits. A second process (the CLI beside the app, or `connectbatch
serve`) that finds the file locked marks itself waiting and retries with backoff for up to
`lock_timeout` seconds, then fails with a message naming the process that holds it. Inside
one process, DuckDB's instance cache makes every Database object on a path share one database.

A full disk must not hide why a run failed. Beside the file lies a small reserve file
(`<db>.reserve`): when writing the cause of a failure runs out of space, `record_failure`
gives the reserve back to the file system and writes the cause in the room it freed. The
file, its write-ahead log and the reserve are created readable by the service user only.

Arrow tables by name: a small file's load reads its Arrow rows through DuckDB's replacement
scan, a local variable of the function that calls `execute`, named as the statement names it
(`_cb_rows`), not through `register`/`unregister`. For a 200-row file the pair cost ~1.4 ms and
the INSERT over the registered view ~0.8 ms more (issue 13, ~5 % of a small file's ingest).
DuckDB looks the name up in the calling frame only, so the variable lives where `execute` runs.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TypeVar

import duckdb

from connectbatch import schemas
from connectbatch.errors import ConnectBatchError
from connectbatch.store.anchor import OPEN_CLOSE, Anchor, marked_waiting

T = TypeVar("T")
RESERVE_BYTES = 256 * 1024  # one DuckDB block: room for one small commit and its checkpoint

# How long a waiting process sleeps at most between two attempts to open a locked file: short,
# so it gets in soon after the holder closes it for us.
MAX_RETRY_DELAY = 0.1

_LOCK_RE = re.compile(r"Conflicting lock is held in (?P<prog>.*?) \(PID (?P<pid>\d+)\)")


class NewerDatabaseError(ConnectBatchError, RuntimeError):
    """The file was migrated by a newer ConnectBatch. An older one writing to it would store
    rows without what the newer one keeps beside them (the key index: records sent again
    would load twice), so it refuses to open it instead."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"{path} was upgraded by a newer ConnectBatch (database migration {found}; this version "
            f"knows up to {known}): run the newer version, or restore a backup from before the upgrade"
        )


class DatabaseBusyError(ConnectBatchError, OSError):
    """Another process kept the database locked for longer than we were willing to wait."""


def private_dir(path: Path) -> Path:
    """Create a folder (and its missing parents) only the service user may enter (0700),
    or tighten one that exists: the data folder holds partners' data and the secret key."""
    if not path.exists():
        if not path.parent.exists():
            private_dir(path.parent)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Make a file the service user's only (0600)."""
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path


def disk_full(exc: BaseException) -> bool:
    """Whether an error is the file system running out of space (DuckDB reports it as text)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


def data_table(data_type: str) -> str:
    """Name of the table holding accepted rows of a data type."""
    return f"data_{schemas.get(data_type).key}"


def all_rows(data_type: str) -> str:
    """Every stored row of a data type, current or ended: the view over its table and its
    Parquet parts (store/parts.py). Readers use it; writes go to the table or the parts."""
    return f"rows_{schemas.get(data_type).key}"


def current_rows(data_type: str) -> str:
    """The rows of a data type that count now, as a subquery: a corrected record (supersede
    mode) or a changed catalog item ends its old row (`valid_to`), which stays for history."""
    return f"(SELECT * FROM {all_rows(data_type)} WHERE valid_to IS NULL)"


# Work to undo outside the database when a transaction rolls back (a Parquet part written
# for it), by the id of the transaction's cursor; dropped when the cursor is given back.
_ROLLBACK: dict[int, list[Callable[[], None]]] = {}

# Transactions this process committed, per database file (`Database.transaction`,
# `own_transaction`): with a Database's opens, what tells a load whether anything may have
# been written since a read (`Database.write_mark`). Counted after each commit, under a lock
# (a lost count could hide one). Per file, not per process: the commits of another
# database (a test's, a heartbeat's) asked a load to look its keys up again for nothing.
_commits: dict[Path, int] = {}
_commits_lock = threading.Lock()


def _committed(file: Path) -> None:
    with _commits_lock:
        _commits[file] = _commits.get(file, 0) + 1


def on_rollback(con: duckdb.DuckDBPyConnection, undo: Callable[[], None]) -> None:
    """Run `undo` if the transaction `con` is in rolls back (through Database.transaction;
    files left by a crash are for recovery)."""
    _ROLLBACK.setdefault(id(con), []).append(undo)


def _undo(con: duckdb.DuckDBPyConnection) -> None:
    for undo in reversed(_ROLLBACK.pop(id(con), [])):
        with contextlib.suppress(Exception):
            undo()


@contextmanager
def own_transaction(con: duckdb.DuckDBPyConnection, file: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A transaction on a connection already in hand (the open's migrations, the key index's
    fill) to the database `file` (`Database.file`), committed when the block ends, rolled back
    if it raises. `Database.transaction` is the one to use elsewhere: it also opens the
    connection and runs rollback hooks."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()
    _committed(file)


def quote(name: str) -> str:
    """An SQL identifier, quoted: for the column names schemas and partners' headers give."""
    return '"' + name.replace('"', '""') + '"'


class Database:
    """One DuckDB file. Cheap to create; keeps the file open only while operations follow
    each other (see the module docstring)."""

    def __init__(self, path: Path, lock_timeout: float = 30.0, linger: float = 0.5) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._migrated = False
        self._migrate_lock = threading.Lock()
        # Times the DuckDB file was really opened through this object: tests and benchmarks
        # count the opens of one ingest (issue 13: one at most).
        self.opens = 0
        self.file = self.path.resolve()  # the file whose commits `write_mark` counts
        self._anchor = Anchor(self.path, self._open, linger)
        _OPEN_DATABASES.add(self)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one unit of work; given back when the block ends."""
        con = self._anchor.cursor()
        try:
            if not self._migrated:
                self._migrate(con)
            yield con
        except duckdb.Error:
            # a failed write may have invalidated the database instance (a full disk): the next
            # operation opens the file afresh instead of inheriting it
            self._anchor.poisoned = True
            raise
        finally:
            _ROLLBACK.pop(id(con), None)
            self._anchor.give_back(con)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic unit of work: commits on success, rolls back on any exception."""
        with self.connect() as con:
            con.begin()
            try:
                yield con
            except BaseException:
                try:
                    con.rollback()
                finally:
                    _undo(con)
                raise
            try:
                con.commit()
            except BaseException:
                _undo(con)
                raise
            _committed(self.file)
            _ROLLBACK.pop(id(con), None)

    def write_mark(self) -> tuple[int, int]:
        """Equal at two moments only if nothing was written in between: another process
        writes only while this object has the file closed (an open more), this process
        only by a commit (`_commits`). A load compares it with the one taken before its
        "already loaded" check (`commit.still_new`)."""
        return self.opens, _commits.get(self.file, 0)

    def held(self) -> contextlib.AbstractContextManager[None]:
        """Keep the file open through a block, between its operations too, unless another
        process waits for it (one open for a file's whole ingest)."""
        return self._anchor.held()

    def release(self) -> None:
        """Close the file now if no operation is using it (at exit, and for a caller about to
        hand the file to another process)."""
        self._anchor.close()

    # ------------------------------------------------------------------ full disk

    @property
    def reserve_path(self) -> Path:
        return self.path.with_name(self.path.name + ".reserve")

    def keep_reserve(self) -> bool:
        """Create the reserve file if it is missing (best effort: False when there is no room)."""
        reserve = self.reserve_path
        if reserve.exists():
            return True
        try:
            fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return True
        except OSError:
            return False
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(b"\0" * RESERVE_BYTES)  # written, not sparse: the blocks are really ours
            return True
        except OSError:
            reserve.unlink(missing_ok=True)
            return False

    def record_failure(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` in one transaction that must land even on a full disk: on running out
        of space, the reserve is given back and the transaction tried once more."""
        try:
            with self.transaction() as con:
                return work(con)
        except Exception as exc:
            if not disk_full(exc) or not self.reserve_path.exists():
                raise
        self.reserve_path.unlink(missing_ok=True)
        with self.transaction() as con:
            result = work(con)
        self.keep_reserve()  # again when there is room (usually not yet)
        return result

    def _open(self) -> duckdb.DuckDBPyConnection:
        if not self.path.parent.exists():
            private_dir(self.path.parent)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        refresh: Callable[[], None] | None = None
        with contextlib.ExitStack() as waiting:
            while True:
                try:
                    with OPEN_CLOSE:
                        con = duckdb.connect(str(self.path))
                        self.opens += 1
                    # timestamps come back as UTC datetimes, on this connection and its cursors
                    con.execute("SET GLOBAL TimeZone = 'UTC'")
                    with contextlib.suppress(OSError):  # DuckDB creates it 0644: tighten it
                        private_file(self.path)
                    return con
                except duckdb.IOException as exc:
                    match = _LOCK_RE.search(str(exc))
                    if match is None:
                        raise ConnectBatchError(f"cannot open the database {self.path}: {exc}") from exc
                    if time.monotonic() >= deadline:
                        raise DatabaseBusyError(
                            f"the database {self.path} is in use by another process "
                            f"(PID {match['pid']}, {match['prog']}); waited {self.lock_timeout:g} s. "
                            "Try again when its current run has finished, or stop it."
                        ) from exc
                    if refresh is None:  # the holder closes the file for us between its operations
                        refresh = waiting.enter_context(marked_waiting(self.path))
                    else:
                        refresh()  # still waiting (a holder of another host goes by its age)
                    time.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY)

    # ------------------------------------------------------------------ migrations

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._migrate_lock:
            if self._migrated:
                return
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name VARCHAR, "
                "applied_at TIMESTAMPTZ DEFAULT current_timestamp)"
            )
            done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
            known = _migrations()
            newer = sorted(done - {version for version, _, _ in known})
            if newer:
                raise NewerDatabaseError(self.path, newer[-1], known[-1][0] if known else 0)
            for version, name, sql in known:
                if version in done:
                    continue
                with own_transaction(con, self.file):
                    con.execute(sql)
                    con.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name]
                    )
            _sync_data_tables(con, self.file)
            self.keep_reserve()
            self._migrated = True


_OPEN_DATABASES: weakref.WeakSet[Database] = weakref.WeakSet()


@atexit.register
def _release_all() -> None:
    """Close lingering anchors at exit, so DuckDB checkpoints while the process is intact."""
    for db in list(_OPEN_DATABASES):
        db.release()


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    folder = resources.files("connectbatch.store") / "migrations"
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found)


# Every data row's version bookkeeping: NULL while the row is current; a re-delivered record
# (a catalog update, a superseding correction) or a snapshot that drops an item ends it with
# the time, the file that did so and why ('updated' | 'removed'). Old versions stay queryable.
ROW_HISTORY_COLUMNS = (("valid_to", "TIMESTAMPTZ"), ("superseded_by", "BIGINT"), ("end_reason", "VARCHAR"))


def _sync_data_tables(con: duckdb.DuckDBPyConnection, file: Path) -> None:
    """Create one table per data type from the schema registry, and add columns the
    registry gained since the table was created (columns are never dropped: old runs keep
    their data); then the views over each table and its Parquet parts, when missing or when
    the table gained a column; then the key index of rows stored before it (store/keys.py)."""
    from connectbatch.store import keys, parts  # both build on this module

    for data_type in schemas.REGISTRY.values():
        table = data_table(data_type.key)
        columns = ",\n    ".join(f"{quote(c.name)} {c.duckdb_type}" for c in data_type.columns)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (\n"
            "    run_id BIGINT NOT NULL,\n    file_id BIGINT NOT NULL,\n"
            "    connection_id BIGINT NOT NULL,\n    line BIGINT NOT NULL,\n"
            f"    {columns}\n)"
        )
        present = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
            ).fetchall()
        }
        for col in data_type.columns:
            if col.name not in present:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {quote(col.name)} {col.duckdb_type}")
        grew = any(col.name not in present for col in data_type.columns)
        for name, sql_type in ROW_HISTORY_COLUMNS:
            if name not in present:
                grew = True
                con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
        if grew or not parts.views_current(con, data_type.key):
            parts.refresh_views(con, data_type.key)
        keys.fill(con, data_type.key, file)
