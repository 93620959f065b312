"""Runs, the file ledger, row rejects and validation results."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import duckdb
import pyarrow as pa

from connectbatch.models import FileRecord, FileState, RejectRow, ReviewState, Run, RunStatus
from connectbatch.parser.api import Reject
from connectbatch.store.data import SMALL_LIST
from connectbatch.store.partners import owned_connections
from connectbatch.store.taken import SETTLED, Settled, Skipped

RUN_COLUMNS = [f.name for f in fields(Run)]  # the order `run_from_row` reads them in
FILE_COLUMNS = [f.name for f in fields(FileRecord)]  # the order `file_from_row` reads them in

# A file with these bytes already produced data for its connection: the same bytes again are
# a duplicate.
HOLDS_DATA = (FileState.LOADED, FileState.QUARANTINED)


def states_in(states: tuple[FileState, ...]) -> str:
    """`state IN (?, ...)` for these states (bound as parameters)."""
    return f"state IN ({', '.join('?' for _ in states)})"


def run_from_row(row: tuple[Any, ...]) -> Run:
    """A `Run` from the columns of RUN_COLUMNS, with its states as enums."""
    data = dict(zip(RUN_COLUMNS, row, strict=True))
    data["status"] = RunStatus(data["status"])
    data["review"] = ReviewState(data["review"]) if data["review"] else None
    return Run(**data)


def _runs(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Run]:
    rows = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where}", params).fetchall()
    return [run_from_row(row) for row in rows]


def create(
    con: duckdb.DuckDBPyConnection,
    connection_id: int,
    trigger: str,
    retry_of: int | None = None,
    *,
    owner: tuple[str | None, int, int | None],
) -> Run:
    """Open a run In Progress; `owner`, (host, pid, pid start) as `liveness.me` gives them,
    tells whether it is still alive (store/liveness.py)."""
    host, pid, pid_start = owner
    row = con.execute(
        "INSERT INTO runs (connection_id, trigger, status, pid, retry_of, host, pid_start) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {', '.join(RUN_COLUMNS)}",
        [connection_id, trigger, str(RunStatus.IN_PROGRESS), pid, retry_of, host, pid_start],
    ).fetchone()
    assert row is not None
    return run_from_row(row)


def get(con: duckdb.DuckDBPyConnection, run_id: int) -> Run:
    found = _runs(con, "WHERE id = ?", [run_id])
    if not found:
        raise LookupError(f"no run with id {run_id}")
    return found[0]


def retried_as(con: duckdb.DuckDBPyConnection, run_id: int) -> Run | None:
    """The run that retried `run_id` (by hand, or a push upload taken in again), if any."""
    found = _runs(con, "WHERE retry_of = ? ORDER BY id DESC LIMIT 1", [run_id])
    return found[0] if found else None


def history(con: duckdb.DuckDBPyConnection, connection_id: int | None = None, limit: int = 200) -> list[Run]:
    if connection_id is None:
        return _runs(con, "ORDER BY id DESC LIMIT ?", [limit])
    return _runs(con, "WHERE connection_id = ? ORDER BY id DESC LIMIT ?", [connection_id, limit])


def in_progress(con: duckdb.DuckDBPyConnection) -> list[Run]:
    return _runs(con, "WHERE status = ?", [str(RunStatus.IN_PROGRESS)])


def quarantined(con: duckdb.DuckDBPyConnection) -> list[Run]:
    return _runs(con, "WHERE review = ? ORDER BY id DESC", [str(ReviewState.QUARANTINED)])


def finish(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    status: RunStatus,
    at: dt.datetime,
    reason: str | None = None,
    *,
    keep_reason: bool = False,
    adding: dict[str, int] | None = None,
    **counters: int | str | None,
) -> Run | None:
    """End a run; the run as it now stands (RETURNING: no second read; None if there is no
    such run). `keep_reason`: a `reason` of None keeps the one recorded (a note). `adding`:
    counters to increase in the same statement (`add_counters` folded in)."""
    sets = ["status = ?", "finished_at = ?", "reason = coalesce(?, reason)" if keep_reason else "reason = ?"]
    params: list[Any] = [str(status), at, reason]
    for name, value in counters.items():
        if name not in RUN_COLUMNS:
            raise KeyError(name)
        sets.append(f"{name} = ?")
        params.append(value)
    for name, more in (adding or {}).items():
        if name not in RUN_COLUMNS or name in counters:
            raise KeyError(name)
        sets.append(f"{name} = {name} + ?")
        params.append(more)
    sql = f"UPDATE runs SET {', '.join(sets)} WHERE id = ? RETURNING {', '.join(RUN_COLUMNS)}"
    rows = con.execute(sql, [*params, run_id]).fetchall()  # all: no result left open (register)
    return run_from_row(rows[0]) if rows else None


def set_review(con: duckdb.DuckDBPyConnection, run_id: int, review: ReviewState, note: str | None) -> None:
    con.execute("UPDATE runs SET review = ?, review_note = ? WHERE id = ?", [str(review), note, run_id])


# ---------------------------------------------------------------- the file ledger


def record_file(
    con: duckdb.DuckDBPyConnection,
    *,
    connection_id: int,
    run_id: int,
    name: str,
    source: str,
    size: int,
    sha256: str,
    remote_path: str | None = None,
    mtime: dt.datetime | None = None,
    state: FileState | str = FileState.FETCHED,
    message: str | None = None,
) -> FileRecord:
    """Add a file to the ledger. `state` may come as its plain value (a pull records a
    skipped file); a value that is no FileState raises ValueError before anything is written."""
    known = str(FileState(state))
    row = con.execute(
        "INSERT INTO files (connection_id, run_id, name, remote_path, source, size, mtime, sha256, state, "
        f"message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {', '.join(FILE_COLUMNS)}",
        [connection_id, run_id, name, remote_path, source, size, mtime, sha256, known, message],
    ).fetchone()
    assert row is not None
    return file_from_row(row)


def files_where(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[FileRecord]:
    rows = con.execute(f"SELECT {', '.join(FILE_COLUMNS)} FROM files {where}", params).fetchall()
    return [file_from_row(row) for row in rows]


def file_from_row(row: tuple[Any, ...]) -> FileRecord:
    data = dict(zip(FILE_COLUMNS, row, strict=True))
    data["state"] = FileState(data["state"])
    return FileRecord(**data)


def get_file(con: duckdb.DuckDBPyConnection, file_id: int) -> FileRecord:
    found = files_where(con, "WHERE id = ?", [file_id])
    if not found:
        raise LookupError(f"no file with id {file_id}")
    return found[0]


def files_of_run(con: duckdb.DuckDBPyConnection, run_id: int) -> list[FileRecord]:
    return files_where(con, "WHERE run_id = ? ORDER BY id", [run_id])


def loaded_file_with_hash(
    con: duckdb.DuckDBPyConnection, connection_id: int, sha256: str
) -> FileRecord | None:
    """A file with these bytes that already produced data for this connection (loaded, or
    quarantined and still awaiting review). Asked for its id first: the usual answer is none,
    and a query's cost grows with the columns it returns (~0.6 ms for all of them, issue 13)."""
    row = con.execute(
        f"SELECT id FROM files WHERE connection_id = ? AND sha256 = ? AND {states_in(HOLDS_DATA)} "
        "ORDER BY id LIMIT 1",
        [connection_id, sha256, *map(str, HOLDS_DATA)],
    ).fetchone()
    return get_file(con, int(row[0])) if row else None


# A ledger entry's message when its run's process died under it (recovery): nothing of it was
# loaded, and the same bytes may come again (a push upload taken in again after the restart).
INTERRUPTED_FILE = "interrupted"


def earlier_with_hash(
    con: duckdb.DuckDBPyConnection, connection_id: int, sha256: str
) -> tuple[FileRecord | None, int | None]:
    """`loaded_file_with_hash` and, in the same statement, the last run whose file with these
    bytes a dead process left (failed, "interrupted"): (loaded file or None, that run or None)."""
    rows = con.execute(
        f"SELECT id, run_id, {states_in(HOLDS_DATA)} FROM files WHERE connection_id = ? AND sha256 = ? "
        f"AND ({states_in(HOLDS_DATA)} OR (state = ? AND message = ?)) ORDER BY id",
        [
            *map(str, HOLDS_DATA), connection_id, sha256, *map(str, HOLDS_DATA),
            str(FileState.FAILED), INTERRUPTED_FILE,
        ],
    ).fetchall()  # fmt: skip
    held = next((int(r[0]) for r in rows if r[2]), None)
    if held is not None:
        return get_file(con, held), None
    return None, (int(rows[-1][1]) if rows else None)


def changed_since(con: duckdb.DuckDBPyConnection, connection_id: int, sha256: str) -> bool:
    """Whether the connection loaded a file of other bytes after its last file of `sha256`."""
    row = con.execute(
        "SELECT count(*) FROM files WHERE connection_id = ? AND state = ? AND sha256 <> ? AND id > "
        "(SELECT max(id) FROM files WHERE connection_id = ? AND sha256 = ? AND state = ?)",
        [connection_id, str(FileState.LOADED), sha256, connection_id, sha256, str(FileState.LOADED)],
    ).fetchall()
    return bool(row and row[0][0])


def retry_of_interrupted(con: duckdb.DuckDBPyConnection, run_id: int, interrupted: int) -> None:
    """Record a push run as the retry of the push run a dead process left with the same upload
    (its bytes taken in again after the restart), unless that one was retried already."""
    con.execute(
        "UPDATE runs SET retry_of = ? WHERE id = ? AND EXISTS (SELECT 1 FROM runs WHERE id = ? "
        "AND status = ? AND trigger = 'push') AND NOT EXISTS (SELECT 1 FROM runs WHERE retry_of = ?)",
        [interrupted, run_id, interrupted, str(RunStatus.FAILED), interrupted],
    )


def taken_before(
    con: duckdb.DuckDBPyConnection,
    connection_id: int,
    remote_path: str,
    size: int | None,
    mtime: dt.datetime | None,
    *,
    by_day: bool = False,
) -> FileRecord | None:
    """A file with this remote path, size and time that an earlier run settled: loaded,
    a duplicate, quarantined, rejected as a whole (the same bytes would fail again), or
    discarded by a reviewer (taking it again would undo that decision).

    A size of None (an FTP server that would not tell it; the ledger holds the size the
    download found) matches any size when the time is known: path and time still tell a
    new version apart, where requiring the listing's None would fetch the file every run.
    `by_day`: the time is known to the day only (an FTP LIST line of a file older than six
    months), so any recorded time on that date is the same file's. A whole listing asks
    once (`taken.Settled`), which this is for one path."""
    return Settled.of(con, connection_id, [remote_path]).taken_before(remote_path, size, mtime, by_day=by_day)


def set_file_state(
    con: duckdb.DuckDBPyConnection,
    file_id: int,
    state: FileState,
    message: str | None = None,
    rows_accepted: int | None = None,
    rows_rejected: int | None = None,
) -> FileRecord | None:
    """Move a ledger entry to `state`; the entry as it now stands (RETURNING: the ingest
    answers with it without reading it again; None if there is no such entry)."""
    rows = con.execute(
        "UPDATE files SET state = ?, message = coalesce(?, message), "
        "rows_accepted = coalesce(?, rows_accepted), rows_rejected = coalesce(?, rows_rejected), "
        f"updated_at = current_timestamp WHERE id = ? RETURNING {', '.join(FILE_COLUMNS)}",
        [str(state), message, rows_accepted, rows_rejected, file_id],
    ).fetchall()  # all: no result left open for a `register` after it
    return file_from_row(rows[0]) if rows else None


# ---------------------------------------------------------------- rejects and validation


def insert_rejects(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    file_id: int,
    rejects: Sequence[Reject],
    keys: Mapping[int, str] | None = None,
    qualifiers: Mapping[int, str] | None = None,
) -> None:
    """Store a file's rejects as the parser (or loading) found them, each with its row's key
    by line (`keys`: what could be read of it) and the key's qualifier (`qualifiers`: its
    VendorEventId); one Arrow scan, no Python rows per statement."""
    if not rejects:
        return
    keys, qualifiers = keys or {}, qualifiers or {}
    row_keys = [keys.get(r.line) for r in rejects]
    row_qualifiers = [qualifiers.get(r.line) for r in rejects]
    if len(rejects) <= SMALL_LIST:  # a few rejects: bound lists, no register/unregister
        con.execute(
            f"INSERT INTO rejects ({REJECT_COLUMNS}) SELECT ?, ?, unnest(?::BIGINT[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
            [
                run_id, file_id, [r.line for r in rejects], [r.column for r in rejects],
                [r.value for r in rejects], [r.reason for r in rejects], row_keys, row_qualifiers,
            ],
        )  # fmt: skip
        return
    table = pa.table(
        {
            "line": pa.array([r.line for r in rejects], pa.int64()),
            "column_name": pa.array([r.column for r in rejects], pa.string()),
            "value": pa.array([r.value for r in rejects], pa.string()),
            "reason": pa.array([r.reason for r in rejects], pa.string()),
            "row_key": pa.array(row_keys, pa.string()),
            "row_qualifier": pa.array(row_qualifiers, pa.string()),
        }
    )
    con.register("_cb_rejects", table)
    try:
        con.execute(
            f"INSERT INTO rejects ({REJECT_COLUMNS}) "
            "SELECT ?, ?, line, column_name, value, reason, row_key, row_qualifier FROM _cb_rejects",
            [run_id, file_id],
        )
    finally:
        con.unregister("_cb_rejects")


# The rejects' columns, named: an INSERT by position broke when a migration added one.
REJECT_COLUMNS = "run_id, file_id, line, column_name, value, reason, row_key, row_qualifier"


def rejects_of_run(con: duckdb.DuckDBPyConnection, run_id: int, limit: int | None = None) -> list[RejectRow]:
    """A run's rejects by file and line, a line's in the order stored (its columns' order):
    DuckDB's sort is not stable, so `rowid` keeps a row's reasons from being shuffled."""
    sql = f"SELECT {REJECT_COLUMNS} FROM rejects WHERE run_id = ? ORDER BY file_id, line, rowid"
    params: list[Any] = [run_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [RejectRow(*row) for row in con.execute(sql, params).fetchall()]


def count_rejects(con: duckdb.DuckDBPyConnection, run_id: int) -> int:
    row = con.execute("SELECT count(*) FROM rejects WHERE run_id = ?", [run_id]).fetchone()
    return int(row[0]) if row else 0


def insert_validation(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    file_id: int,
    success: bool,
    critical: int,
    warnings: int,
    report_json: str,
) -> None:
    con.execute(
        "INSERT INTO validation_results (run_id, file_id, success, critical_failures, warnings, report) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [run_id, file_id, success, critical, warnings, report_json],
    )


def validation_of_run(con: duckdb.DuckDBPyConnection, run_id: int) -> list[tuple[int, bool, str]]:
    """(file id, success, report JSON) per validated file of the run."""
    return [
        (int(r[0]), bool(r[1]), r[2] if isinstance(r[2], str) else json.dumps(r[2]))
        for r in con.execute(
            "SELECT file_id, success, report FROM validation_results WHERE run_id = ? ORDER BY file_id",
            [run_id],
        ).fetchall()
    ]


def reject_rates(
    con: duckdb.DuckDBPyConnection, partners: tuple[int, ...] = (), limit: int = 1000
) -> list[tuple[str, dt.datetime, float]]:
    """(connection name, run start, reject rate) of the last `limit` runs that read rows, oldest
    first, for the trend chart; with `partners`, of their connections only (as the queue)."""
    owned, params = owned_connections(partners, "r.connection_id") if partners else ("TRUE", [])
    rows = con.execute(
        "SELECT c.name, r.started_at, r.rows_rejected / greatest(r.rows_accepted + r.rows_rejected, 1) "
        "FROM runs r JOIN connections c ON c.id = r.connection_id "
        f"WHERE r.rows_accepted + r.rows_rejected > 0 AND {owned} "
        "ORDER BY r.started_at DESC, r.id DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [(r[0], r[1], float(r[2])) for r in reversed(rows)]


def add_counters(con: duckdb.DuckDBPyConnection, run_id: int, **add: int) -> None:
    for name in add:
        if name not in RUN_COLUMNS:
            raise KeyError(name)
    sets = ", ".join(f"{name} = {name} + ?" for name in add)
    con.execute(f"UPDATE runs SET {sets} WHERE id = ?", [*add.values(), run_id])


def add_note(con: duckdb.DuckDBPyConnection, run_id: int, text: str) -> None:
    """`note`, after the run's remark so far (another file's, a pinned host key) instead of over it."""
    con.execute(
        "UPDATE runs SET reason = CASE WHEN coalesce(reason, '') = '' THEN ? ELSE reason || '; ' || ? END "
        "WHERE id = ?",
        [text, text, run_id],
    )


def note(con: duckdb.DuckDBPyConnection, run_id: int, text: str) -> None:
    """A remark on a run that is not a failure (e.g. the host key a first pull pinned); a
    failure reason given when the run finishes replaces it."""
    con.execute("UPDATE runs SET reason = ? WHERE id = ?", [text, run_id])


# ---------------------------------------------------------------- staging retention

# A staged copy still needed: its run is going on, or its batch awaits a reviewer.
_NEEDED_STATES = (FileState.FETCHED, FileState.PARSED, FileState.VALIDATED, FileState.QUARANTINED)


def staged_hashes_in_use(con: duckdb.DuckDBPyConnection) -> set[str]:
    """sha256 of staged copies retention must keep: files of runs In Progress or quarantined,
    files not finished or awaiting review, and Failed files whose run was not retried (`retry`
    reads nothing else; an audit saw a crashed upload's only copy removed, its retry fail)."""
    rows = con.execute(
        "SELECT DISTINCT f.sha256 FROM files f JOIN runs r ON r.id = f.run_id "
        f"WHERE f.sha256 <> '' AND (r.status = ? OR r.review = ? OR f.{states_in(_NEEDED_STATES)} "
        "OR (f.state = ? AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.retry_of = r.id)))",
        [
            str(RunStatus.IN_PROGRESS), str(ReviewState.QUARANTINED), *map(str, _NEEDED_STATES),
            str(FileState.FAILED),
        ],
    ).fetchall()  # fmt: skip
    return {str(r[0]) for r in rows}


def record_staging_removal(
    con: duckdb.DuckDBPyConnection,
    sha256: str,
    size: int,
    last_used_at: dt.datetime,
    removed_at: dt.datetime,
    reason: str,
) -> None:
    con.execute(
        "INSERT INTO staging_removals (sha256, size, last_used_at, removed_at, reason) "
        "VALUES (?, ?, ?, ?, ?)",
        [sha256, size, last_used_at, removed_at, reason],
    )


def staging_removals(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, dt.datetime, dt.datetime, str]]:
    """(sha256, size, last used, removed at, reason), newest first."""
    return [
        (str(r[0]), int(r[1]), r[2], r[3], str(r[4]))
        for r in con.execute(
            "SELECT sha256, size, last_used_at, removed_at, reason FROM staging_removals ORDER BY id DESC"
        ).fetchall()
    ]


def skipped_before(
    con: duckdb.DuckDBPyConnection,
    connection_id: int,
    remote_path: str,
    size: int | None,
    mtime: dt.datetime | None,
    message: str,
    *,
    by_day: bool = False,
) -> FileRecord | None:
    """The ledger line of an earlier run that skipped this same file (path, size, time) for
    the same reason: a pull records such a decision once, not on every poll. `by_day` as
    in `taken_before`. A whole listing asks once (`taken.Skipped`), which this is for one path."""
    skipped = Skipped.of(con, connection_id, [remote_path])
    return skipped.before(remote_path, size, mtime, message, by_day=by_day)


def settled_remote(
    con: duckdb.DuckDBPyConnection, connection_id: int
) -> list[tuple[str, int | None, dt.datetime | None, str]]:
    """(remote path, size, time, state) of every remote file a run of the connection settled
    (`taken_before` for all at once): what a distributed pull worker must not fetch again."""
    rows = con.execute(
        f"SELECT remote_path, size, mtime, state FROM files WHERE connection_id = ? "
        f"AND remote_path IS NOT NULL AND {states_in(SETTLED)} ORDER BY id",
        [connection_id, *map(str, SETTLED)],
    ).fetchall()
    return [(str(r[0]), r[1], r[2], str(r[3])) for r in rows]
