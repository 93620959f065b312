"""Saved field mappings (`column_mappings`): one row per version per connection."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import duckdb


@dataclass(frozen=True)
class SavedMapping:
    """One version of a connection's mapping. `columns` keys are partner text: escape them
    (`escaping.visible`) wherever they are shown."""

    connection_id: int
    version: int
    columns: dict[str, str | None]
    constants: dict[str, str] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    created_by: str | None = None

    @property
    def column_map(self) -> dict[str, str]:
        """What the parser applies: partner header -> our column, ignored lines left out."""
        return {k: v for k, v in self.columns.items() if v is not None}

    def to_json(self) -> dict[str, object]:
        return {
            "connection_id": self.connection_id,
            "version": self.version,
            "mapping": self.columns,
            "constants": self.constants,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
        }


def _row(row: tuple[object, ...]) -> SavedMapping:
    connection_id, version, raw, created_at, created_by = row
    body = json.loads(str(raw))
    return SavedMapping(
        int(str(connection_id)),
        int(str(version)),
        dict(body.get("columns", {})),
        {str(k): str(v) for k, v in body.get("constants", {}).items()},
        created_at if isinstance(created_at, dt.datetime) else None,
        str(created_by) if created_by is not None else None,
    )


_FIELDS = "connection_id, version, mapping, created_at, created_by"


def current(con: duckdb.DuckDBPyConnection, connection_id: int) -> SavedMapping | None:
    row = con.execute(
        f"SELECT {_FIELDS} FROM column_mappings WHERE connection_id = ? ORDER BY version DESC LIMIT 1",
        [connection_id],
    ).fetchone()
    return _row(row) if row else None


def versions(con: duckdb.DuckDBPyConnection, connection_id: int) -> list[SavedMapping]:
    rows = con.execute(
        f"SELECT {_FIELDS} FROM column_mappings WHERE connection_id = ? ORDER BY version DESC",
        [connection_id],
    ).fetchall()
    return [_row(r) for r in rows]


def add(
    con: duckdb.DuckDBPyConnection,
    connection_id: int,
    columns: dict[str, str | None],
    constants: dict[str, str],
    created_by: str | None,
) -> SavedMapping:
    """Save a new version (previous + 1) and make it the connection's column_map."""
    row = con.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM column_mappings WHERE connection_id = ?", [connection_id]
    ).fetchone()
    version = int(row[0]) if row else 1
    body = json.dumps({"columns": columns, "constants": constants})
    con.execute(
        "INSERT INTO column_mappings (connection_id, version, mapping, created_by) VALUES (?, ?, ?, ?)",
        [connection_id, version, body, created_by],
    )
    column_map = {k: v for k, v in columns.items() if v is not None}
    con.execute(
        "UPDATE connections SET column_map = ?, updated_at = current_timestamp WHERE id = ?",
        [json.dumps(column_map) if column_map else None, connection_id],
    )
    saved = current(con, connection_id)
    assert saved is not None
    return saved


def set_run_version(con: duckdb.DuckDBPyConnection, run_id: int, version: int | None) -> None:
    con.execute("UPDATE runs SET mapping_version = ? WHERE id = ?", [version, run_id])


def set_runs_version(con: duckdb.DuckDBPyConnection, run_ids: list[int], version: int | None) -> None:
    """`set_run_version` for several runs in one statement (group commit)."""
    if run_ids:
        con.execute(
            "UPDATE runs SET mapping_version = ? WHERE list_contains(?::BIGINT[], id)", [version, run_ids]
        )
