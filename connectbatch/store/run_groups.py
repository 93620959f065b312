"""A group commit's ledger and loads at once: what `store.runs` does for one file or run,
in one statement for many (pipeline/group.py stages and loads many small files in one
transaction; a statement costs ~1 ms whatever its rows, issue 13)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import duckdb
import pyarrow as pa

from connectbatch.models import FileRecord, FileState, Run, RunStatus
from connectbatch.parser.api import Reject
from connectbatch.store.runs import (
    FILE_COLUMNS,
    HOLDS_DATA,
    INTERRUPTED_FILE,
    REJECT_COLUMNS,
    RUN_COLUMNS,
    file_from_row,
    files_where,
    run_from_row,
    states_in,
)

# ---------------------------------------------------------------- a group's loads at once
# Group commit (pipeline/group.py) loads many small files in one transaction; these do for all
# of them in one statement what `set_file_state`, `insert_rejects`, `insert_validation` and
# `finish` do for one (a statement costs ~1 ms whatever its rows, issue 13).


def set_files_loaded(
    con: duckdb.DuckDBPyConnection, loaded: Sequence[tuple[int, int, int]]
) -> dict[int, FileRecord]:
    """`set_file_state(LOADED, None, accepted, rejected)` for each (file id, accepted,
    rejected); the entries as they now stand, by id."""
    if not loaded:
        return {}
    ids, accepted, rejected = (list(c) for c in zip(*loaded, strict=True))
    columns = ", ".join(f"files.{name}" for name in FILE_COLUMNS)
    rows = con.execute(
        "UPDATE files SET state = ?, rows_accepted = v.accepted, rows_rejected = v.rejected, "
        "updated_at = current_timestamp FROM (SELECT unnest(?::BIGINT[]) AS id, "
        "unnest(?::BIGINT[]) AS accepted, unnest(?::BIGINT[]) AS rejected) v "
        f"WHERE files.id = v.id RETURNING {columns}",
        [str(FileState.LOADED), ids, accepted, rejected],
    ).fetchall()
    return {record.id: record for record in map(file_from_row, rows)}


def insert_rejects_of_files(
    con: duckdb.DuckDBPyConnection,
    rejects: Sequence[tuple[int, int, Sequence[Reject], Mapping[int, str], Mapping[int, str]]],
) -> None:
    """`insert_rejects` for each (run id, file id, rejects, keys and qualifiers by line), in
    one statement."""
    flat = [
        (run_id, file_id, r, keys.get(r.line), qualifiers.get(r.line))
        for run_id, file_id, found, keys, qualifiers in rejects
        for r in found
    ]
    if not flat:
        return
    table = pa.table(
        {
            "run_id": pa.array([f[0] for f in flat], pa.int64()),
            "file_id": pa.array([f[1] for f in flat], pa.int64()),
            "line": pa.array([f[2].line for f in flat], pa.int64()),
            "column_name": pa.array([f[2].column for f in flat], pa.string()),
            "value": pa.array([f[2].value for f in flat], pa.string()),
            "reason": pa.array([f[2].reason for f in flat], pa.string()),
            "row_key": pa.array([f[3] for f in flat], pa.string()),
            "row_qualifier": pa.array([f[4] for f in flat], pa.string()),
        }
    )
    con.register("_cb_rejects", table)
    try:
        con.execute(f"INSERT INTO rejects ({REJECT_COLUMNS}) SELECT {REJECT_COLUMNS} FROM _cb_rejects")
    finally:
        con.unregister("_cb_rejects")


def insert_validations(
    con: duckdb.DuckDBPyConnection, results: Sequence[tuple[int, int, bool, int, int, str]]
) -> None:
    """`insert_validation` for each (run id, file id, success, critical, warnings, report
    JSON), in one statement."""
    if not results:
        return
    run_ids, file_ids, success, critical, warnings, reports = (list(c) for c in zip(*results, strict=True))
    con.execute(
        "INSERT INTO validation_results (run_id, file_id, success, critical_failures, warnings, report) "
        "SELECT unnest(?::BIGINT[]), unnest(?::BIGINT[]), unnest(?::BOOLEAN[]), unnest(?::INTEGER[]), "
        "unnest(?::INTEGER[]), unnest(?::VARCHAR[])",
        [run_ids, file_ids, success, critical, warnings, reports],
    )


def finish_loaded(
    con: duckdb.DuckDBPyConnection, runs: Sequence[tuple[int, dict[str, int]]], at: dt.datetime
) -> dict[int, Run]:
    """`finish` as `closing.close` ends a run whose only file loaded, for each (run id,
    counters its load adds): Completed, one file seen and loaded, a noted reason kept; the
    runs as they now stand, by id."""
    if not runs:
        return {}
    added = ("rows_accepted", "rows_rejected", "actions_created")
    if any(set(counters) != set(added) for _, counters in runs):
        raise KeyError("finish_loaded adds rows_accepted, rows_rejected and actions_created")
    columns = ", ".join(f"runs.{name}" for name in RUN_COLUMNS)
    sets = ", ".join(f"{name} = runs.{name} + v.{name}" for name in added)
    unnests = ", ".join(f"unnest(?::BIGINT[]) AS {name}" for name in added)
    rows = con.execute(
        f"UPDATE runs SET status = ?, finished_at = ?, files_seen = 1, files_loaded = 1, files_skipped = 0, "
        f"{sets} FROM (SELECT unnest(?::BIGINT[]) AS id, {unnests}) v WHERE runs.id = v.id "
        f"RETURNING {columns}",
        [
            str(RunStatus.COMPLETED), at, [run_id for run_id, _ in runs],
            *([counters[name] for _, counters in runs] for name in added),
        ],
    ).fetchall()  # fmt: skip
    return {run.id: run for run in map(run_from_row, rows)}


# ---------------------------------------------------------------- a group's ledger at once


def create_many(
    con: duckdb.DuckDBPyConnection, connection_id: int, trigger: str, owner: tuple[str, int, int], count: int
) -> list[Run]:
    """`create` `count` times in one statement (group commit: a run per waiting file), in id
    order; `owner`: (host, pid, pid start) as `liveness.me` gives them."""
    if count <= 0:
        return []
    host, pid, start = owner
    rows = con.execute(
        "INSERT INTO runs (connection_id, trigger, status, pid, host, pid_start) "
        f"SELECT ?, ?, ?, ?, ?, ? FROM range(?) RETURNING {', '.join(RUN_COLUMNS)}",
        [connection_id, trigger, str(RunStatus.IN_PROGRESS), pid, host, start, count],
    ).fetchall()
    return sorted(map(run_from_row, rows), key=lambda run: run.id)


def record_files(
    con: duckdb.DuckDBPyConnection,
    connection_id: int,
    entries: Sequence[tuple[int, str, str, int, str, str | None, dt.datetime | None]],
) -> list[FileRecord]:
    """`record_file` (state Fetched) for each (run id, name, source, size, sha256, remote
    path, mtime), in one statement; the entries in the order given. A run's entries have
    distinct bytes (a group stages a repeat alone), so (run, sha256) tells them apart."""
    if not entries:
        return []
    columns = list(zip(*entries, strict=True))
    rows = con.execute(
        "INSERT INTO files (connection_id, run_id, name, source, size, sha256, remote_path, mtime, state) "
        "SELECT ?, unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BIGINT[]), "
        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[]), ? "
        f"RETURNING {', '.join(FILE_COLUMNS)}",
        [connection_id, *(list(c) for c in columns), str(FileState.FETCHED)],
    ).fetchall()
    by_key = {(record.run_id, record.sha256): record for record in map(file_from_row, rows)}
    if len(by_key) != len(entries):
        raise ValueError("record_files: a run's entries must have distinct bytes")
    return [by_key[(entry[0], entry[4])] for entry in entries]


def loaded_files_with_hashes(
    con: duckdb.DuckDBPyConnection, connection_id: int, hashes: list[str]
) -> dict[str, FileRecord]:
    """`loaded_file_with_hash` for several hashes in one statement, by hash."""
    return earlier_files_with_hashes(con, connection_id, hashes)[0]


def earlier_files_with_hashes(
    con: duckdb.DuckDBPyConnection, connection_id: int, hashes: list[str]
) -> tuple[dict[str, FileRecord], dict[str, int]]:
    """`earlier_with_hash` for several hashes in one statement: the loaded files by hash, and
    the last run a dead process left with a file of those bytes, by hash."""
    if not hashes:
        return {}, {}
    found: dict[str, FileRecord] = {}
    interrupted: dict[str, int] = {}
    for record in files_where(
        con,
        "WHERE connection_id = ? AND list_contains(?::VARCHAR[], sha256) "
        f"AND ({states_in(HOLDS_DATA)} OR (state = ? AND message = ?)) ORDER BY id",
        [connection_id, hashes, *map(str, HOLDS_DATA), str(FileState.FAILED), INTERRUPTED_FILE],
    ):
        if record.state in HOLDS_DATA:
            found.setdefault(record.sha256, record)
        else:
            interrupted[record.sha256] = record.run_id
    return found, interrupted
