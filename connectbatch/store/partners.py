"""Partners: the businesses connections belong to. Names are unique case-insensitively
(`name_key`)."""

from __future__ import annotations

from typing import Any

import duckdb

from connectbatch.models import Partner, PartnerType

_SELECT = "SELECT id, name, type, contacts, return_email, notes, created_at, updated_at FROM partners"


def _partner(row: tuple[Any, ...]) -> Partner:
    return Partner(
        id=int(row[0]), name=row[1], type=PartnerType(row[2]), contacts=row[3], return_email=row[4],
        notes=row[5], created_at=row[6], updated_at=row[7],
    )  # fmt: skip


def insert(
    con: duckdb.DuckDBPyConnection,
    name: str,
    type_: PartnerType,
    contacts: str | None,
    return_email: str | None,
    notes: str | None,
) -> Partner:
    row = con.execute(
        "INSERT INTO partners (name, name_key, type, contacts, return_email, notes) "
        "VALUES (?, lower(?), ?, ?, ?, ?) RETURNING id",
        [name, name, str(type_), contacts, return_email, notes],
    ).fetchone()
    assert row is not None
    return get(con, int(row[0]))


def update(con: duckdb.DuckDBPyConnection, partner: Partner) -> Partner:
    con.execute(
        "UPDATE partners SET name = ?, name_key = lower(?), type = ?, contacts = ?, return_email = ?, "
        "notes = ?, updated_at = current_timestamp WHERE id = ?",
        [partner.name, partner.name, str(partner.type), partner.contacts, partner.return_email,
         partner.notes, partner.id],
    )  # fmt: skip
    return get(con, partner.id)


def get(con: duckdb.DuckDBPyConnection, partner_id: int) -> Partner:
    row = con.execute(f"{_SELECT} WHERE id = ?", [partner_id]).fetchone()
    if row is None:
        raise LookupError(f"no partner with id {partner_id}")
    return _partner(row)


def find(con: duckdb.DuckDBPyConnection, name_or_id: str) -> Partner | None:
    """By name (case-insensitive), then by numeric id."""
    row = con.execute(f"{_SELECT} WHERE name_key = lower(?)", [name_or_id.strip()]).fetchone()
    if row is not None:
        return _partner(row)
    if name_or_id.strip().isdigit():
        row = con.execute(f"{_SELECT} WHERE id = ?", [int(name_or_id)]).fetchone()
        if row is not None:
            return _partner(row)
    return None


def list_all(con: duckdb.DuckDBPyConnection) -> list[Partner]:
    return [_partner(row) for row in con.execute(f"{_SELECT} ORDER BY name_key").fetchall()]


def delete(con: duckdb.DuckDBPyConnection, partner_id: int) -> None:
    con.execute("DELETE FROM partners WHERE id = ?", [partner_id])


def names(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """Partner names by id (for lists that show a connection's partner)."""
    return {int(r[0]): str(r[1]) for r in con.execute("SELECT id, name FROM partners").fetchall()}
