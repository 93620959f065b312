"""Status sync-back: what an inbound connection has not reported back to its partner yet, the
headers its files arrived with, and the sync-back ledger with its watermark.

The watermark (`sync_back_watermarks`) is a set of reported items per connection and channel,
written in the same transaction as the ledger row (`record`): each load outcome and each
action change goes out exactly once per channel, across restarts, whatever order files and
changes committed in (a held batch released days later is still reported)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from decimal import Decimal

import duckdb

from connectbatch import schemas
from connectbatch.models import ACTION_ID, FileState, SyncBack
from connectbatch.store.db import all_rows

_SELECT = "SELECT id, connection_id, channel, trigger, file_name, rows, recipient, created_at FROM sync_backs"
# File states that tell the partner something: rows loaded (accepted/rejected, or released
# after review), the file refused as a whole, a held batch discarded.
REPORTED_STATES = (FileState.LOADED, FileState.REJECTED, FileState.DISCARDED)


@dataclass(frozen=True)
class FileOutcome:
    """A file of the connection whose outcome is not reported yet."""

    file_id: int
    name: str
    state: str  # loaded | rejected | discarded
    message: str | None
    review: str | None  # the run's review state: released for a released held batch
    at: dt.datetime | None


@dataclass(frozen=True)
class RowOutcome:
    """One data row of a file: accepted (loaded) or rejected (with its reason)."""

    line: int
    key: tuple[str | None, ...]  # the data type's key columns (None: not readable)
    action_id: int | None
    rejected: bool = False
    column: str | None = None  # rejected: the column at fault (schema name)
    value: str | None = None
    reason: str | None = None
    # A modification row's action as it stands now ('accepted': payable, 'reversed'), or None:
    # the row's own outcome decides the Status word (`action_standing`)
    standing: str | None = None


@dataclass(frozen=True)
class Change:
    """One action_audit entry of an action of the connection."""

    audit_id: int
    at: dt.datetime | None
    change: str  # modify | reverse | lock | supersede
    old_status: str | None
    new_status: str
    old_amount: Decimal | None
    new_amount: Decimal | None
    reason: str | None
    action_id: int
    file_id: int
    file_name: str | None
    line: int
    source_key: str
    # the action's record, every key column (a call's events share the CallSessionId and
    # differ in VendorEventId); () when its row is not found
    key: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class Removal:
    """A stored row a snapshot file ended because it no longer lists its key (a catalog in
    `snapshot` mode): reported once per snapshot file (`by_file`)."""

    by_file: int  # the snapshot file that removed it
    by_name: str | None
    at: dt.datetime | None
    file_id: int  # the file the item came in, and its line there
    file_name: str | None
    line: int
    key: tuple[str | None, ...]


def save_header(con: duckdb.DuckDBPyConnection, file_id: int, header: list[str] | None) -> None:
    """Keep the header a file arrived with (a status file names the key columns as the
    partner wrote them, after the file itself is gone)."""
    if header is None:
        return
    con.execute(
        "INSERT INTO file_headers (file_id, header) VALUES (?, ?) ON CONFLICT (file_id) DO UPDATE "
        "SET header = excluded.header",
        [file_id, json.dumps(list(header))],
    )


def add_header(con: duckdb.DuckDBPyConnection, file_id: int, header: list[str] | None) -> None:
    """`save_header` for a file loading for the first time (the ingest's load transaction:
    nothing can have saved its header before). A plain INSERT: DuckDB's ON CONFLICT costs
    ~1 ms more a statement, a twentieth of a small file's ingest (issue 13)."""
    if header is None:
        return
    sql = "INSERT INTO file_headers (file_id, header) VALUES (?, ?)"
    con.execute(sql, [file_id, json.dumps(list(header))])


def add_headers(con: duckdb.DuckDBPyConnection, headers: list[tuple[int, list[str] | None]]) -> None:
    """`add_header` for several files in one statement (group commit)."""
    given = [(file_id, json.dumps(list(h))) for file_id, h in headers if h is not None]
    if not given:
        return
    con.execute(
        "INSERT INTO file_headers (file_id, header) SELECT unnest(?::BIGINT[]), unnest(?::VARCHAR[])",
        [[g[0] for g in given], [g[1] for g in given]],
    )


def headers(con: duckdb.DuckDBPyConnection, file_ids: list[int]) -> dict[int, list[str]]:
    if not file_ids:
        return {}
    rows = con.execute(
        "SELECT file_id, header FROM file_headers WHERE list_contains(?::BIGINT[], file_id)", [file_ids]
    ).fetchall()
    return {int(r[0]): [str(h) for h in json.loads(r[1])] for r in rows}


def pending_files(con: duckdb.DuckDBPyConnection, connection_id: int, channel: str) -> list[FileOutcome]:
    rows = con.execute(
        "SELECT f.id, f.name, f.state, f.message, r.review, f.updated_at FROM files f "
        "LEFT JOIN runs r ON r.id = f.run_id "
        "WHERE f.connection_id = ? AND list_contains(?::VARCHAR[], f.state) AND NOT EXISTS ("
        "SELECT 1 FROM sync_back_watermarks w WHERE w.connection_id = ? AND w.channel = ? "
        "AND w.kind = 'file' AND w.item_id = f.id) ORDER BY f.id",
        [connection_id, [s.value for s in REPORTED_STATES], connection_id, channel],
    ).fetchall()
    return [
        FileOutcome(
            int(r[0]), str(r[1]), str(r[2]), r[3], r[4], r[5] if isinstance(r[5], dt.datetime) else None
        )
        for r in rows
    ]


def rows_of_file(con: duckdb.DuckDBPyConnection, data_type: str, file_id: int) -> list[RowOutcome]:
    """The file's loaded rows (with the action each created, while it still points there)
    and its rejected rows, in line order."""
    dtype = schemas.get(data_type)
    keys = ", ".join(f'CAST(d."{k}" AS VARCHAR)' for k in dtype.key_columns) or "NULL"
    action = "a.id" if dtype.action_columns is not None else "NULL"
    join = (
        " LEFT JOIN actions a ON a.file_id = d.file_id AND a.line = d.line"
        if dtype.action_columns is not None
        else ""
    )
    found: list[RowOutcome] = []
    width = len(dtype.key_columns) or 1
    for row in con.execute(
        f"SELECT d.line, {action}, {keys} FROM {all_rows(data_type)} d{join} WHERE d.file_id = ? "
        "ORDER BY d.line",
        [file_id],
    ).fetchall():
        found.append(
            RowOutcome(int(row[0]), tuple(row[2 : 2 + width]), None if row[1] is None else int(row[1]))
        )
    loaded = {r.line for r in found}
    for line, column, value, reason, row_key, row_qualifier in con.execute(
        "SELECT line, column_name, value, reason, row_key, row_qualifier FROM rejects WHERE file_id = ? "
        "ORDER BY line, rowid",
        [file_id],
    ).fetchall():
        if int(line) in loaded:  # parsed but not applied (action modifications): rejected
            found = [r for r in found if r.line != int(line)]
            loaded.discard(int(line))
        key = (row_key, row_qualifier, *(None,) * (width - 2))[:width]  # as far as read (None: not)
        found.append(
            RowOutcome(int(line), key, None, rejected=True, column=column, value=value, reason=reason)
        )
    if data_type == "action_modifications":
        found = action_standing(con, file_id, found)
    return sorted(found, key=lambda r: r.line)


def action_standing(con: duckdb.DuckDBPyConnection, file_id: int, rows: list[RowOutcome]) -> list[RowOutcome]:
    """A modifications file's rows, each with the action it names as it stands now, among
    the file's partner's actions only (another partner's is no action, as the load says).
    A status file keyed by ActionId said `invalid` for a valid, payable action whose change
    was refused, and `valid` for one a row had just reversed (actions audit)."""
    ids = {r.line: int(m[1]) for r in rows if r.key and r.key[0] and (m := ACTION_ID.fullmatch(r.key[0]))}
    if not ids:
        return rows
    standing = dict(
        con.execute(
            "SELECT a.id, CASE WHEN 'REVERSED' IN (a.status, a.state_before_lock) THEN 'reversed' "
            "ELSE 'accepted' END FROM actions a JOIN connections c ON c.id = a.connection_id "
            "WHERE list_contains(?::BIGINT[], a.id) AND c.partner_id = (SELECT o.partner_id "
            "FROM files f JOIN connections o ON o.id = f.connection_id WHERE f.id = ?)",
            [sorted(set(ids.values())), file_id],
        ).fetchall()
    )
    return [replace(r, standing=standing.get(ids.get(r.line, -1))) for r in rows]


def pending_removals(
    con: duckdb.DuckDBPyConnection, connection_id: int, channel: str, data_type: str
) -> list[Removal]:
    """Rows of the connection that snapshot files removed and the channel has not reported,
    by snapshot file then line. Watermark kind 'removed', item = the snapshot file's id:
    its removals commit with its load, all at once."""
    dtype = schemas.get(data_type)
    if not dtype.key_columns:
        return []
    keys = ", ".join(f'CAST(d."{k}" AS VARCHAR)' for k in dtype.key_columns)
    rows = con.execute(
        f"SELECT d.superseded_by, s.name, d.valid_to, d.file_id, f.name, d.line, {keys} "
        f"FROM {all_rows(data_type)} d LEFT JOIN files f ON f.id = d.file_id "
        "LEFT JOIN files s ON s.id = d.superseded_by "
        "WHERE d.connection_id = ? AND d.end_reason = 'removed' AND d.superseded_by IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM sync_back_watermarks w WHERE w.connection_id = ? "
        "AND w.channel = ? AND w.kind = 'removed' AND w.item_id = d.superseded_by) "
        "ORDER BY d.superseded_by, d.file_id, d.line",
        [connection_id, connection_id, channel],
    ).fetchall()
    return [
        Removal(int(r[0]), r[1], r[2] if isinstance(r[2], dt.datetime) else None, int(r[3]), r[4],
                int(r[5]), tuple(r[6:]))
        for r in rows
    ]  # fmt: skip


def pending_changes(
    con: duckdb.DuckDBPyConnection, connection_id: int, channel: str, data_type: str
) -> list[Change]:
    """Audit entries of the connection's actions not reported yet, in the order they happened,
    each with the key columns of the record its action points at."""
    dtype = schemas.get(data_type)
    keys = ", ".join(f'CAST(d."{k}" AS VARCHAR)' for k in dtype.key_columns)
    rows = con.execute(
        "SELECT au.id, au.changed_at, au.change, au.old_status, au.new_status, au.old_amount, "
        f"au.new_amount, au.reason, a.id, a.file_id, f.name, a.line, a.source_key, {keys or 'NULL'} "
        "FROM action_audit au JOIN actions a ON a.id = au.action_id LEFT JOIN files f ON f.id = a.file_id "
        f"LEFT JOIN (SELECT * FROM {all_rows(data_type)} WHERE connection_id = ?) d "
        "ON d.file_id = a.file_id AND d.line = a.line "
        "WHERE a.connection_id = ? AND NOT EXISTS (SELECT 1 FROM sync_back_watermarks w "
        "WHERE w.connection_id = ? AND w.channel = ? AND w.kind = 'change' AND w.item_id = au.id) "
        "ORDER BY au.id",
        [connection_id, connection_id, connection_id, channel],
    ).fetchall()
    return [
        Change(
            audit_id=int(r[0]),
            at=r[1] if isinstance(r[1], dt.datetime) else None,
            change=str(r[2]),
            old_status=r[3],
            new_status=str(r[4]),
            old_amount=r[5],
            new_amount=r[6],
            reason=r[7],
            action_id=int(r[8]),
            file_id=int(r[9]),
            file_name=r[10],
            line=int(r[11]),
            source_key=str(r[12]),
            key=tuple(r[13:]) if dtype.key_columns and r[13] is not None else (),
        )
        for r in rows
    ]


def next_id(con: duckdb.DuckDBPyConnection) -> int:
    [(value,)] = con.execute("SELECT nextval('seq_sync_backs')").fetchall()
    return int(value)


def record(
    con: duckdb.DuckDBPyConnection,
    sync_back: SyncBack,
    files: list[int],
    changes: list[int],
    removals: list[int] | None = None,
) -> SyncBack:
    """The ledger row and the watermark of what it carried, in the caller's transaction."""
    con.execute(
        "INSERT INTO sync_backs "
        "(id, connection_id, channel, trigger, file_name, rows, recipient, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            sync_back.id, sync_back.connection_id, sync_back.channel, sync_back.trigger,
            sync_back.file_name, sync_back.rows, sync_back.recipient, sync_back.created_at,
        ],
    )  # fmt: skip
    for kind, ids in (("file", files), ("change", changes), ("removed", removals or [])):
        if ids:  # one statement a kind (exports.export_new says why)
            con.execute(
                "INSERT INTO sync_back_watermarks (connection_id, channel, kind, item_id, sync_back_id) "
                "SELECT ?, ?, ?, unnest(?::BIGINT[]), ?",
                [sync_back.connection_id, sync_back.channel, kind, list(ids), sync_back.id],
            )
    return get(con, sync_back.id)


def recorded_names(
    con: duckdb.DuckDBPyConnection, connection_id: int, channel: str, names: list[str]
) -> list[str]:
    """Which of `names` are status files the ledger recorded for the connection's channel."""
    if not names:
        return []
    rows = con.execute(
        "SELECT file_name FROM sync_backs WHERE connection_id = ? AND channel = ? "
        "AND list_contains(?::VARCHAR[], file_name)",
        [connection_id, channel, names],
    ).fetchall()
    return [str(r[0]) for r in rows]


def get(con: duckdb.DuckDBPyConnection, sync_back_id: int) -> SyncBack:
    row = con.execute(f"{_SELECT} WHERE id = ?", [sync_back_id]).fetchone()
    if row is None:
        raise LookupError(f"no sync-back {sync_back_id}")
    return _sync_back(row)


def of_connection(con: duckdb.DuckDBPyConnection, connection_id: int, limit: int = 100) -> list[SyncBack]:
    cur = con.execute(f"{_SELECT} WHERE connection_id = ? ORDER BY id DESC LIMIT ?", [connection_id, limit])
    return [_sync_back(r) for r in cur.fetchall()]


def _sync_back(row: tuple[object, ...]) -> SyncBack:
    return SyncBack(
        id=int(str(row[0])), connection_id=int(str(row[1])), channel=str(row[2]), trigger=str(row[3]),
        file_name=str(row[4]), rows=int(str(row[5])), recipient=None if row[6] is None else str(row[6]),
        created_at=row[7] if isinstance(row[7], dt.datetime) else None,
    )  # fmt: skip
