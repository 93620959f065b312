"""Data exports for outbound ("Pull from us") connections, written by DuckDB itself.

An export carries only rows of its `sources` (inbound connections of the outbound
connection's partner). `export_new` writes what the connection has not exported yet: rows of
files loaded since (whatever their EventDate: a late row counts when it is loaded) and rows
whose action changed status since (modified, reversed, locked). What was exported is kept in
`export_watermarks` in the same transaction as the ledger row, so each row and each change
goes out exactly once, across restarts. Its file stays under an in-flight name (`in_flight`)
until that transaction commits: the caller then `publish`es it, so a partner never collects a
file whose rows are not recorded as exported (they would be exported again)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.models import Export
from connectbatch.store import csvsql
from connectbatch.store.db import all_rows, current_rows

_SELECT = "SELECT id, connection_id, trigger, file_name, rows, new_rows, changes, created_at FROM exports"


# An action's id as models.Action.label writes it ("A-000123", "A-1234567"): DuckDB's lpad
# also cuts a longer text to its width, and exported action 1,234,567 as A-123456, another one.
ACTION_LABEL = "printf('A-%06d', a.id)"

# An action's status as a partner reads it: a reversal stays REVERSED once its lock period
# ends (stored LOCKED, with what it was before), since LOCKED there reads as approved for good.
EXPORTED_STATUS = (
    "CASE WHEN a.status = 'LOCKED' AND a.state_before_lock = 'REVERSED' THEN 'REVERSED' ELSE a.status END"
)


def _select(data_type: str) -> tuple[str, str]:
    """The SELECT list and FROM/JOIN part of an export of `data_type` (alias d: data rows)."""
    dtype = schemas.get(data_type)
    columns = ", ".join(csvsql.column_cell("d", c) for c in dtype.columns)
    action_columns = ""
    join = "JOIN runs r ON r.id = d.run_id"
    if dtype.action_columns is not None:
        action_columns = (
            f', {ACTION_LABEL} AS "ActionId", '
            f'{EXPORTED_STATUS} AS "ActionStatus", '
            'a.amount AS "ActionAmount", ' + csvsql.iso_cell("a.lock_at", "LockDate")
        )
        join += " LEFT JOIN actions a ON a.file_id = d.file_id AND a.line = d.line"
    # current rows only: a record corrected (supersede) or a catalog item changed since is
    # sent as its new version, from the file that brought it
    return f"{columns}{action_columns}", f"{current_rows(data_type)} d {join}"


def export_new(
    con: duckdb.DuckDBPyConnection,
    connection_id: int,
    data_type: str,
    sources: list[int],
    folder: Path,
    trigger: str,
    now: dt.datetime,
) -> Export | None:
    """Write what `connection_id` has not exported yet from `sources` into a new file in
    `folder`, record it in the ledger and the watermark; None when there is nothing new.
    Runs inside the caller's transaction: the file is left under its in-flight name for the
    caller to `publish` after the commit; a failure here removes it (no ledger row, no file)."""
    table = all_rows(data_type)
    if not sources:
        return None
    files = [
        int(r[0])
        for r in con.execute(
            f"SELECT DISTINCT d.file_id FROM {table} d WHERE list_contains(?::BIGINT[], d.connection_id) "
            "AND NOT EXISTS (SELECT 1 FROM export_watermarks w WHERE w.connection_id = ? "
            "AND w.kind = 'file' AND w.item_id = d.file_id) ORDER BY 1",
            [sources, connection_id],
        ).fetchall()
    ]
    changes: list[tuple[int, int, int]] = []
    if schemas.get(data_type).action_columns is not None:
        changes = [
            (int(r[0]), int(r[1]), int(r[2]))
            for r in con.execute(
                "SELECT au.id, a.file_id, a.line FROM action_audit au JOIN actions a ON a.id = au.action_id "
                "WHERE list_contains(?::BIGINT[], a.connection_id) AND a.data_type = ? AND NOT EXISTS ("
                "SELECT 1 FROM export_watermarks w WHERE w.connection_id = ? AND w.kind = 'change' "
                "AND w.item_id = au.id) ORDER BY 1",
                [sources, schemas.get(data_type).key, connection_id],
            ).fetchall()
        ]
    if not files and not changes:
        return None
    [(next_id,)] = con.execute("SELECT nextval('seq_exports')").fetchall()
    export_id = int(next_id)
    name = f"export-{schemas.get(data_type).key}-{export_id:06d}-{now:%Y%m%dT%H%M%S}.csv"
    target = folder / name
    select, source = _select(data_type)
    changed = pa.table(
        {
            "file_id": pa.array([c[1] for c in changes], pa.int64()),
            "line": pa.array([c[2] for c in changes], pa.int64()),
        }
    )
    where = (
        "list_contains(?::BIGINT[], d.file_id) OR EXISTS (SELECT 1 FROM _cb_changed c "
        "WHERE c.file_id = d.file_id AND c.line = d.line)"
    )
    query = f"SELECT {select} FROM {source} WHERE {where} ORDER BY d.file_id, d.line"
    try:
        con.register("_cb_changed", changed)
        try:
            counted = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE list_contains(?::BIGINT[], d.file_id)) "
                f"FROM {source} WHERE {where}",
                [files, files],
            ).fetchall()[0]
            _copy(con, query, [files], target, publish=False)
        finally:
            con.unregister("_cb_changed")
        rows, new_rows = (int(counted[0]), int(counted[1])) if counted else (0, 0)
        con.execute(
            "INSERT INTO exports (id, connection_id, trigger, file_name, rows, new_rows, changes, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [export_id, connection_id, trigger, name, rows, new_rows, len(changes), now],
        )
        # one statement a kind: `executemany` took ~0.4 ms a row, and an export of 150,000
        # lock changes held the database a minute, every other command waiting (outbound audit)
        for kind, ids in (("file", files), ("change", [c[0] for c in changes])):
            if ids:
                con.execute(
                    "INSERT INTO export_watermarks (connection_id, kind, item_id, export_id) "
                    "SELECT ?, ?, unnest(?::BIGINT[]), ?",
                    [connection_id, kind, list(ids), export_id],
                )
        return get(con, export_id)
    except BaseException:  # nothing recorded: the rows go in the next export, this file nowhere
        unpublished(target).unlink(missing_ok=True)
        raise


def unpublished(target: Path) -> Path:
    """The name an export has until it may be collected: hidden, and ending in `.tmp`, an
    in-flight name (transfer/naming.py) no partner's pattern matches and no listing shows."""
    return target.with_name("." + target.name + ".tmp")


def publish(target: Path) -> None:
    """Give a recorded export its own name (a concurrent `settle` may have done it)."""
    try:
        unpublished(target).replace(target)
    except FileNotFoundError:
        if not target.exists():
            raise


def settle(con: duckdb.DuckDBPyConnection, connection_id: int, folder: Path) -> list[Path]:
    """Publish the exports of `connection_id` left in flight in `folder` whose ledger row
    committed (the process stopped between the commit and the rename): their rows are marked
    exported, so only this file brings them. An unrecorded one is left hidden: it may be a
    concurrent export about to commit (a failed one removes its own). Returns those published."""
    staged = {p.name[1 : -len(".tmp")]: p for p in folder.glob(".export-*.csv.tmp")}
    if not staged:
        return []
    recorded = con.execute(
        "SELECT file_name FROM exports WHERE connection_id = ? AND list_contains(?::VARCHAR[], file_name)",
        [connection_id, list(staged)],
    ).fetchall()
    published = [folder / str(r[0]) for r in recorded]
    for target in published:
        publish(target)
    return published


def record(
    con: duckdb.DuckDBPyConnection, connection_id: int, trigger: str, file_name: str, rows: int,
    now: dt.datetime,
) -> Export:  # fmt: skip
    """A ledger row for an export written by date range (it moves no watermark)."""
    row = con.execute(
        "INSERT INTO exports (connection_id, trigger, file_name, rows, created_at) VALUES (?, ?, ?, ?, ?) "
        "RETURNING id",
        [connection_id, trigger, file_name, rows, now],
    ).fetchone()
    assert row is not None
    return get(con, int(row[0]))


def get(con: duckdb.DuckDBPyConnection, export_id: int) -> Export:
    row = con.execute(f"{_SELECT} WHERE id = ?", [export_id]).fetchone()
    if row is None:
        raise LookupError(f"no export {export_id}")
    return _export(row)


def of_connection(con: duckdb.DuckDBPyConnection, connection_id: int, limit: int = 100) -> list[Export]:
    cur = con.execute(f"{_SELECT} WHERE connection_id = ? ORDER BY id DESC LIMIT ?", [connection_id, limit])
    return [_export(r) for r in cur.fetchall()]


def _export(row: tuple[object, ...]) -> Export:
    return Export(
        id=int(str(row[0])), connection_id=int(str(row[1])), trigger=str(row[2]),
        file_name=None if row[3] is None else str(row[3]), rows=int(str(row[4])),
        new_rows=int(str(row[5])), changes=int(str(row[6])),
        created_at=row[7] if isinstance(row[7], dt.datetime) else None,
    )  # fmt: skip


def _copy(
    con: duckdb.DuckDBPyConnection, query: str, params: list[object], target: Path, *, publish: bool = True
) -> None:
    """COPY into the in-flight name, then (`publish`) move it into place: a partner never
    collects a half-written file. `publish=False` leaves it in flight for the caller."""
    tmp = unpublished(target)
    con.execute(f"COPY ({query}) TO '{csvsql.sql_path(tmp)}' (HEADER, DELIMITER ',')", params)
    _synced(tmp)
    if publish:
        tmp.replace(target)


def _synced(path: Path) -> None:
    """Flush a written export to disk before its ledger row commits (as status files and the
    mail spool are): DuckDB's COPY does not, and after a power cut `settle` published what
    the page cache had not written yet, a short or empty file whose rows were marked exported."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def export_csv(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    start: dt.datetime,
    end: dt.datetime,
    target: Path,
    sources: list[int] | None = None,
) -> int:
    """Rows of `data_type` whose event (or load) time is in [start, end), from `sources`
    only (None: every connection; the services always name them), with the status and
    current amount of their action where they have one. Returns the row count."""
    dtype = schemas.get(data_type)
    when = 'd."EventDate"' if "EventDate" in dtype.column_names else "r.started_at"
    scope = "" if sources is None else " AND list_contains(?::BIGINT[], d.connection_id)"
    params: list[object] = [start, end] + ([] if sources is None else [sources])
    select, source = _select(data_type)
    query = (
        f"SELECT {select} FROM {source} WHERE {when} >= ? AND {when} < ?{scope} ORDER BY d.file_id, d.line"
    )
    relation = con.execute(f"SELECT count(*) FROM ({query})", params).fetchone()
    count = int(relation[0]) if relation else 0
    _copy(con, query, params, target)
    return count
