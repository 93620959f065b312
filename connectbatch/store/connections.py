"""Connections: create, read, update, delete, status."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import fields
from typing import Any

import duckdb

from connectbatch.models import (
    AfterSuccess,
    CatalogMode,
    Connection,
    ConnectionStatus,
    Direction,
    LateEvents,
    Method,
    Methodology,
    Redelivery,
    ReviewState,
)
from connectbatch.store import credentials as credential_store
from connectbatch.store.runs import HOLDS_DATA, states_in
from connectbatch.transfer.specs import spec_from_json, spec_to_json

_COLUMNS = [f.name for f in fields(Connection) if f.name not in ("id", "created_at", "updated_at")]
_EDITABLE = [c for c in _COLUMNS if c not in ("status", "last_active")]


def _row_to_connection(names: list[str], row: tuple[Any, ...]) -> Connection:
    data = dict(zip(names, row, strict=True))
    data["direction"] = Direction(data["direction"])
    data["method"] = Method(data["method"])
    data["methodology"] = Methodology(data["methodology"])
    data["status"] = ConnectionStatus(data["status"])
    data["after_success"] = AfterSuccess(data["after_success"])
    data["column_map"] = json.loads(data["column_map"]) if data["column_map"] else {}
    data["transfer"] = spec_from_json(data["method"], data["transfer"])
    if "redelivery" in data:
        data["redelivery"] = Redelivery(data["redelivery"] or Redelivery.NEW_KEYS_ONLY)
    if "catalog_mode" in data:
        data["catalog_mode"] = CatalogMode(data["catalog_mode"] or CatalogMode.UPDATES)
    sources = json.loads(data["export_sources"]) if data["export_sources"] else []
    data["export_sources"] = [int(i) for i in sources]
    data["late_events"] = LateEvents(data.get("late_events") or LateEvents.LOCK)
    if data.get("expect_grace_minutes") is None:
        data["expect_grace_minutes"] = 60
    data["sync_back"] = [str(c) for c in json.loads(data["sync_back"])] if data.get("sync_back") else []
    data["status_words"] = json.loads(data["status_words"]) if data.get("status_words") else {}
    return Connection(**data)


def _select(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Connection]:
    cur = con.execute(f"SELECT * FROM connections {where}", params)
    names = [d[0] for d in cur.description]
    return [_row_to_connection(names, row) for row in cur.fetchall()]


def _value(conn: Connection, column: str) -> Any:
    value = getattr(conn, column)
    if column == "column_map":
        return json.dumps(value) if value else None
    if column in ("export_sources", "sync_back", "status_words"):
        return json.dumps(value) if value else None
    if column == "transfer":
        return spec_to_json(value) if value is not None else None
    return str(value) if hasattr(value, "value") else value


def insert(con: duckdb.DuckDBPyConnection, conn: Connection, created_at: dt.datetime) -> Connection:
    """`created_at` is the pipeline's clock, not the database's: delivery expectations count
    only the deadlines after it, and the checks run on that same clock."""
    placeholders = ", ".join("?" for _ in _COLUMNS)
    row = con.execute(
        f"INSERT INTO connections ({', '.join(_COLUMNS)}, created_at) VALUES ({placeholders}, ?) "
        "RETURNING id",
        [*[_value(conn, c) for c in _COLUMNS], created_at],
    ).fetchone()
    assert row is not None
    return get(con, int(row[0]))


def update(con: duckdb.DuckDBPyConnection, conn: Connection) -> Connection:
    assignments = ", ".join(f"{c} = ?" for c in _EDITABLE)
    con.execute(
        f"UPDATE connections SET {assignments}, updated_at = current_timestamp WHERE id = ?",
        [*[_value(conn, c) for c in _EDITABLE], conn.id],
    )
    return get(con, conn.id)


def get(con: duckdb.DuckDBPyConnection, connection_id: int) -> Connection:
    found = get_or_none(con, connection_id)
    if found is None:
        raise LookupError(f"no connection with id {connection_id}")
    return found


def get_or_none(con: duckdb.DuckDBPyConnection, connection_id: int) -> Connection | None:
    found = _select(con, "WHERE id = ?", [connection_id])
    return found[0] if found else None


def exists(con: duckdb.DuckDBPyConnection, connection_id: int) -> bool:
    """Whether the connection is still there: one indexed lookup, no row turned into a
    Connection (our servers ask it at every file a session opens or closes)."""
    return con.execute("SELECT 1 FROM connections WHERE id = ?", [connection_id]).fetchone() is not None


def find(con: duckdb.DuckDBPyConnection, name_or_id: str) -> Connection | None:
    """By exact name, then case-insensitive name, then numeric id."""
    for where, param in (
        ("WHERE name = ?", name_or_id),
        ("WHERE lower(name) = lower(?)", name_or_id),
    ):
        found = _select(con, where, [param])
        if len(found) == 1:
            return found[0]
    if name_or_id.isdigit():
        found = _select(con, "WHERE id = ?", [int(name_or_id)])
        if found:
            return found[0]
    return None


def list_all(con: duckdb.DuckDBPyConnection) -> list[Connection]:
    return _select(con, "ORDER BY lower(name)", [])


def delete(con: duckdb.DuckDBPyConnection, connection_id: int) -> None:
    credential_store.detach_connection(con, connection_id)
    con.execute("DELETE FROM connections WHERE id = ?", [connection_id])


def set_status(
    con: duckdb.DuckDBPyConnection, connection_id: int, status: ConnectionStatus, at: dt.datetime
) -> None:
    con.execute(
        "UPDATE connections SET status = ?, last_active = ? WHERE id = ?",
        [str(status), at, connection_id],
    )


def set_completed_unless_held(con: duckdb.DuckDBPyConnection, connection_id: int, at: dt.datetime) -> None:
    """The connection's status after a clean run: Completed, or Needs review while any of its
    batches awaits a reviewer (a later clean run must not bury it). One statement instead of
    reading every quarantined run and then updating (issue 13)."""
    con.execute(
        "UPDATE connections SET status = CASE WHEN EXISTS (SELECT 1 FROM runs "
        "WHERE runs.connection_id = ? AND runs.review = ?) THEN ? ELSE ? END, last_active = ? "
        "WHERE id = ?",
        [
            connection_id,
            str(ReviewState.QUARANTINED),
            str(ConnectionStatus.NEEDS_REVIEW),
            str(ConnectionStatus.COMPLETED),
            at,
            connection_id,
        ],
    )


def of_partner(con: duckdb.DuckDBPyConnection, partner_id: int) -> list[Connection]:
    return _select(con, "WHERE partner_id = ? ORDER BY lower(name)", [partner_id])


def partner_of(con: duckdb.DuckDBPyConnection, connection_id: int) -> int | None:
    """The partner id of a connection (None for a deleted connection)."""
    row = con.execute("SELECT partner_id FROM connections WHERE id = ?", [connection_id]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def partners_of(con: duckdb.DuckDBPyConnection, connection_ids: list[int]) -> dict[int, int]:
    """`partner_of` of several connections at once (a deleted one is missing)."""
    rows = con.execute(
        "SELECT id, partner_id FROM connections WHERE id IN (SELECT unnest(?::BIGINT[])) "
        "AND partner_id IS NOT NULL",
        [connection_ids],
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def holds_data(con: duckdb.DuckDBPyConnection, connection_id: int) -> bool:
    """Whether any file of the connection produced data (loaded, or held for review)."""
    row = con.execute(
        f"SELECT 1 FROM files WHERE connection_id = ? AND {states_in(HOLDS_DATA)} LIMIT 1",
        [connection_id, *map(str, HOLDS_DATA)],
    ).fetchone()
    return row is not None
