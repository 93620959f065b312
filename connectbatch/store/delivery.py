"""Expected delivery: the files a connection received (with the clock's arrival time) and
its delivery alerts (`delivery_alerts`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from connectbatch.models import FileState

# What counts as a delivery: a file the partner sent that we took (whatever became of its
# rows). A file a pull left alone, or the same bytes again, is no new delivery.
_DELIVERED = tuple(
    str(s) for s in FileState if s not in (FileState.SKIPPED, FileState.DUPLICATE, FileState.FETCHED)
)
# Deliveries whose rows say nothing of what the partner usually sends: refused as a whole for
# their content (0 rows read), failed on our side (a retry loads the bytes again as a new
# file), or a held batch a reviewer discarded. They arrived (a slot is not late), but a "0
# rows" among them is no volume, and counted they would shift the usual of the files after.
_NO_READING = (FileState.REJECTED, FileState.FAILED, FileState.DISCARDED)


@dataclass(frozen=True)
class Arrival:
    """One delivered file: when it arrived (its run's end, on the pipeline's clock), its rows
    and what became of it. `name` and `message` are partner text: escape them wherever they
    are shown."""

    file_id: int
    connection_id: int
    at: dt.datetime
    name: str
    rows: int
    rejected: int
    state: FileState = FileState.LOADED
    message: str | None = None  # why a file was refused or failed

    @property
    def reading(self) -> bool:
        """Whether its rows count as a volume and a reject rate (see `_NO_READING`)."""
        return self.state not in _NO_READING


@dataclass(frozen=True)
class Alert:
    """A delivery alert; open while `cleared_at` is None. `message` may hold partner text."""

    id: int
    connection_id: int
    kind: str
    raised_at: dt.datetime
    cleared_at: dt.datetime | None
    message: str
    notified: bool
    dedupe_key: str
    clear_note: str | None


def arrivals(
    con: duckdb.DuckDBPyConnection,
    connection_id: int | None,
    since: dt.datetime,
    until: dt.datetime | None = None,
) -> list[Arrival]:
    """Delivered files arrived in [since, until] (all connections when `connection_id` is
    None), oldest first."""
    where = [
        "f.state IN (" + ", ".join("?" for _ in _DELIVERED) + ")",
        "coalesce(r.finished_at, r.started_at) >= ?",
    ]
    params: list[Any] = [*_DELIVERED, since]
    if until is not None:
        where.append("coalesce(r.finished_at, r.started_at) <= ?")
        params.append(until)
    if connection_id is not None:
        where.append("f.connection_id = ?")
        params.append(connection_id)
    rows = con.execute(
        "SELECT f.id, f.connection_id, coalesce(r.finished_at, r.started_at), f.name, "
        "f.rows_accepted + f.rows_rejected, f.rows_rejected, f.state, f.message "
        f"FROM files f JOIN runs r ON r.id = f.run_id WHERE {' AND '.join(where)} ORDER BY 3, f.id",
        params,
    ).fetchall()
    return [
        Arrival(int(a), int(b), c, str(d), int(e), int(f), FileState(g), h) for a, b, c, d, e, f, g, h in rows
    ]


_FIELDS = "id, connection_id, kind, raised_at, cleared_at, message, notified, dedupe_key, clear_note"


def _alerts(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Alert]:
    rows = con.execute(f"SELECT {_FIELDS} FROM delivery_alerts {where}", params).fetchall()
    return [Alert(*row) for row in rows]


def by_key(con: duckdb.DuckDBPyConnection, connection_id: int, dedupe_key: str) -> Alert | None:
    found = _alerts(con, "WHERE connection_id = ? AND dedupe_key = ? LIMIT 1", [connection_id, dedupe_key])
    return found[0] if found else None


def raise_alert(
    con: duckdb.DuckDBPyConnection,
    connection_id: int,
    kind: str,
    message: str,
    at: dt.datetime,
    dedupe_key: str,
) -> Alert | None:
    """Add an open alert; None (nothing written) when one with the same key was raised before."""
    if by_key(con, connection_id, dedupe_key) is not None:
        return None
    row = con.execute(
        "INSERT INTO delivery_alerts (connection_id, kind, raised_at, message, dedupe_key) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        [connection_id, kind, at, message, dedupe_key],
    ).fetchone()
    assert row is not None
    return get(con, int(row[0]))


def get(con: duckdb.DuckDBPyConnection, alert_id: int) -> Alert:
    found = _alerts(con, "WHERE id = ?", [alert_id])
    if not found:
        raise LookupError(f"no delivery alert with id {alert_id}")
    return found[0]


def clear(con: duckdb.DuckDBPyConnection, alert_id: int, at: dt.datetime, note: str) -> Alert:
    con.execute(
        "UPDATE delivery_alerts SET cleared_at = ?, clear_note = ? WHERE id = ? AND cleared_at IS NULL",
        [at, note, alert_id],
    )
    return get(con, alert_id)


def mark_notified(con: duckdb.DuckDBPyConnection, alert_id: int) -> None:
    con.execute("UPDATE delivery_alerts SET notified = TRUE WHERE id = ?", [alert_id])


def open_alerts(con: duckdb.DuckDBPyConnection, connection_id: int | None = None) -> list[Alert]:
    """Open alerts, oldest first (all connections when `connection_id` is None)."""
    if connection_id is None:
        return _alerts(con, "WHERE cleared_at IS NULL ORDER BY raised_at, id", [])
    return _alerts(
        con, "WHERE cleared_at IS NULL AND connection_id = ? ORDER BY raised_at, id", [connection_id]
    )


def of_connection(con: duckdb.DuckDBPyConnection, connection_id: int, limit: int = 200) -> list[Alert]:
    """Newest first, open and cleared."""
    return _alerts(
        con, "WHERE connection_id = ? ORDER BY raised_at DESC, id DESC LIMIT ?", [connection_id, limit]
    )
