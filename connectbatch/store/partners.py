"""Partners: the businesses connections belong to. Names are unique case-insensitively
(`name_key`)."""

from __future__ import annotations

from typing import Any

import duckdb

from connectbatch.models import Partner, PartnerType

_SELECT = (
    "SELECT id, name, type, contacts, return_email, notes, created_at, updated_at, "
    "(SELECT list(m.media_id ORDER BY m.media_id) FROM partner_media m WHERE m.partner_id = partners.id) "
    "FROM partners"
)


def _partner(row: tuple[Any, ...]) -> Partner:
    return Partner(
        id=int(row[0]), name=row[1], type=PartnerType(row[2]), contacts=row[3], return_email=row[4],
        notes=row[5], created_at=row[6], updated_at=row[7], media_ids=[int(m) for m in row[8] or []],
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
    con.execute("DELETE FROM partner_media WHERE partner_id = ?", [partner_id])
    con.execute("DELETE FROM partners WHERE id = ?", [partner_id])


def names(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """Partner names by id (for lists that show a connection's partner)."""
    return {int(r[0]): str(r[1]) for r in con.execute("SELECT id, name FROM partners").fetchall()}


def set_media_ids(con: duckdb.DuckDBPyConnection, partner_id: int, media_ids: list[int]) -> None:
    """Make `media_ids` the partner's MediaIds (the caller checked no other partner has one)."""
    con.execute("DELETE FROM partner_media WHERE partner_id = ?", [partner_id])
    for media_id in sorted(set(media_ids)):
        con.execute("INSERT INTO partner_media (media_id, partner_id) VALUES (?, ?)", [media_id, partner_id])


def media_owners(con: duckdb.DuckDBPyConnection, media_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Which partner (id, name) each of `media_ids` already belongs to, for those that do."""
    if not media_ids:
        return {}
    rows = con.execute(
        "SELECT m.media_id, p.id, p.name FROM partner_media m JOIN partners p ON p.id = m.partner_id "
        "WHERE m.media_id IN (SELECT unnest(?))",
        [media_ids],
    ).fetchall()
    return {int(r[0]): (int(r[1]), str(r[2])) for r in rows}


def media_names(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """The partner name of every MediaId that has one (for labels like "Leadwave Media (98765)")."""
    rows = con.execute(
        "SELECT m.media_id, p.name FROM partner_media m JOIN partners p ON p.id = m.partner_id"
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def with_connections(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    """(id, name) of the partners that own at least one connection, by name: what a partner
    filter offers."""
    rows = con.execute(
        "SELECT p.id, p.name FROM partners p WHERE EXISTS "
        "(SELECT 1 FROM connections c WHERE c.partner_id = p.id) ORDER BY p.name_key"
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def partner_in(column: str, partners: tuple[int, ...]) -> tuple[str, list[Any]]:
    """A SQL condition (and its parameters) for "`column` is one of `partners`": `column` is
    code (a column of the caller's query, e.g. "c.partner_id"), never input. Every scoping of
    rows to a partner manager's partners is built here, so there is one way to write it."""
    return f"{column} IN ({', '.join('?' for _ in partners)})", list(partners)


def owned_connections(partners: tuple[int, ...], column: str = "connection_id") -> tuple[str, list[Any]]:
    """A SQL condition (and its parameters) for "the row's connection belongs to one of
    `partners`": `column` is code (a column name of the caller's query), never input."""
    owned, params = partner_in("partner_id", partners)
    return f"{column} IN (SELECT id FROM connections WHERE {owned})", params


def media_label_sql(column: str) -> str:
    """SQL text of a MediaId's label: "Name (98765)" where a partner has that MediaId, the
    number otherwise. `column` is code, never input."""
    return (
        f"coalesce((SELECT p.name || ' (' || CAST({column} AS VARCHAR) || ')' FROM partner_media m "
        f"JOIN partners p ON p.id = m.partner_id WHERE m.media_id = TRY_CAST({column} AS BIGINT)), "
        f"CAST({column} AS VARCHAR))"
    )


def of_connections(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """The partner name of each connection, by connection id."""
    rows = con.execute(
        "SELECT c.id, p.name FROM connections c JOIN partners p ON p.id = c.partner_id"
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}
