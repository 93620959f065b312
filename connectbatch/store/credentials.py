"""Credentials of connections. Secrets arrive here already encrypted or hashed."""

from __future__ import annotations

from typing import Any

import duckdb

from connectbatch.models import Credential
from connectbatch.transfer.specs import AuthKind

# `host_key` is no longer written (pins live in store/host_keys.py, per server since
# migration 007); it is still read so the Credential shape stays the same.
# Since migration 014 a credential may be used by several connections of its partner
# (`credential_connections`, which also says whether it is main for each). Read through a
# connection (`of_connection`), `connection_id` and `is_main` are that connection's; read
# by id (`get`), they are the owner's (the connection that created it, or took it over).
_COLUMNS = (
    "k.id, {connection}, k.name, k.kind, k.username, {main}, k.status, k.return_email, k.host_key, "
    "k.last_error, k.secret IS NOT NULL OR k.password_hash IS NOT NULL, k.created_at, k.updated_at, "
    "k.auth, k.passphrase IS NOT NULL, k.partner_id, "
    "(SELECT list(c.name ORDER BY lower(c.name), c.id) FROM credential_connections u "
    "JOIN connections c ON c.id = u.connection_id WHERE u.credential_id = k.id)"
)
_SELECT = (
    f"SELECT {_COLUMNS.format(connection='k.connection_id', main='coalesce(l.is_main, k.is_main)')} "
    "FROM credentials k LEFT JOIN credential_connections l "
    "ON l.credential_id = k.id AND l.connection_id = k.connection_id"
)
_SELECT_VIA = (
    f"SELECT {_COLUMNS.format(connection='l.connection_id', main='l.is_main')} "
    "FROM credentials k JOIN credential_connections l ON l.credential_id = k.id"
)


def _credential(row: tuple[Any, ...]) -> Credential:
    credential = Credential(*row)
    credential.used_by = tuple(row[-1] or ())
    if credential.auth is not None:
        credential.auth = AuthKind(credential.auth)
    return credential


def _select(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Credential]:
    return [_credential(row) for row in con.execute(f"{_SELECT} {where}", params).fetchall()]


def add(
    con: duckdb.DuckDBPyConnection,
    *,
    connection_id: int,
    name: str,
    kind: str,
    username: str | None,
    secret: bytes | None = None,
    password_hash: str | None = None,
    return_email: str | None = None,
    auth: AuthKind | None = None,
    passphrase: bytes | None = None,
    partner_id: int | None = None,
) -> Credential:
    """Add a credential as the connection's main one; earlier ones become secondary."""
    row = con.execute(
        "INSERT INTO credentials (connection_id, name, kind, username, secret, password_hash, "
        "return_email, auth, passphrase, is_main, partner_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE, ?) RETURNING id",
        [
            connection_id,
            name,
            kind,
            username,
            secret,
            password_hash,
            return_email,
            str(auth) if auth else None,
            passphrase,
            partner_id,
        ],
    ).fetchone()
    assert row is not None
    link(con, int(row[0]), connection_id)
    return get(con, int(row[0]))


def link(con: duckdb.DuckDBPyConnection, credential_id: int, connection_id: int) -> None:
    """The connection uses the credential from now on, as its main one."""
    con.execute("UPDATE credential_connections SET is_main = FALSE WHERE connection_id = ?", [connection_id])
    con.execute(
        "INSERT INTO credential_connections (credential_id, connection_id, is_main) VALUES (?, ?, TRUE)",
        [credential_id, connection_id],
    )


def connection_ids(con: duckdb.DuckDBPyConnection, credential_id: int) -> list[int]:
    """The connections using a credential, oldest link first (by connection id)."""
    rows = con.execute(
        "SELECT connection_id FROM credential_connections WHERE credential_id = ? ORDER BY connection_id",
        [credential_id],
    ).fetchall()
    return [int(r[0]) for r in rows]


def of_partner(con: duckdb.DuckDBPyConnection, partner_id: int) -> list[Credential]:
    """Every credential set of a partner (the owner's view), newest first."""
    return _select(con, "WHERE k.partner_id = ? ORDER BY k.id DESC", [partner_id])


def detach_connection(con: duckdb.DuckDBPyConnection, connection_id: int) -> None:
    """A connection goes: credentials only it used go with it; those other connections
    still use stay, and one it owned passes to the oldest remaining user."""
    con.execute(
        "DELETE FROM credentials WHERE id IN (SELECT credential_id FROM credential_connections "
        "WHERE connection_id = ?) AND id NOT IN (SELECT credential_id FROM credential_connections "
        "WHERE connection_id <> ?)",
        [connection_id, connection_id],
    )
    con.execute("DELETE FROM credentials WHERE connection_id = ? AND id NOT IN "
                "(SELECT credential_id FROM credential_connections)", [connection_id])  # fmt: skip
    con.execute("DELETE FROM credential_connections WHERE connection_id = ?", [connection_id])
    con.execute(
        "UPDATE credentials SET connection_id = (SELECT min(u.connection_id) FROM credential_connections u "
        "WHERE u.credential_id = credentials.id), updated_at = current_timestamp WHERE connection_id = ?",
        [connection_id],
    )


def get(con: duckdb.DuckDBPyConnection, credential_id: int) -> Credential:
    found = _select(con, "WHERE k.id = ?", [credential_id])
    if not found:
        raise LookupError(f"no credential with id {credential_id}")
    return found[0]


def of_connection(con: duckdb.DuckDBPyConnection, connection_id: int) -> list[Credential]:
    rows = con.execute(
        f"{_SELECT_VIA} WHERE l.connection_id = ? ORDER BY l.is_main DESC, k.id DESC", [connection_id]
    ).fetchall()
    return [_credential(row) for row in rows]


def main_secret(
    con: duckdb.DuckDBPyConnection, connection_id: int
) -> tuple[Credential, bytes | None, bytes | None] | None:
    """The main credential with its encrypted secret and key passphrase (for transports
    that log in)."""
    row = con.execute(
        "SELECT k.id, k.secret, k.passphrase FROM credentials k JOIN credential_connections l "
        "ON l.credential_id = k.id WHERE l.connection_id = ? AND l.is_main ORDER BY k.id DESC LIMIT 1",
        [connection_id],
    ).fetchone()
    if row is None:
        return None
    mine = [c for c in of_connection(con, connection_id) if c.id == int(row[0])]
    return mine[0], row[1], row[2]


def provisioned_id(con: duckdb.DuckDBPyConnection, username: str) -> int | None:
    """The id of the provisioned login `username`, or None: what a logged-in session checks
    (one lookup, where `by_username` also reads the connections that use it)."""
    row = con.execute(
        "SELECT id FROM credentials WHERE username = ? AND kind = 'provisioned'", [username]
    ).fetchone()
    return None if row is None else int(row[0])


def by_username(con: duckdb.DuckDBPyConnection, username: str) -> tuple[Credential, str | None] | None:
    """A provisioned login and its password hash (for our hosted servers)."""
    row = con.execute(
        "SELECT id, password_hash FROM credentials WHERE username = ? AND kind = 'provisioned'",
        [username],
    ).fetchone()
    if row is None:
        return None
    return get(con, int(row[0])), row[1]


def make_main(con: duckdb.DuckDBPyConnection, credential: Credential) -> None:
    """Main for `credential.connection_id` (the owner, or the connection it was read through)."""
    con.execute(
        "UPDATE credential_connections SET is_main = (credential_id = ?) WHERE connection_id = ?",
        [credential.id, credential.connection_id],
    )
    con.execute("UPDATE credentials SET updated_at = current_timestamp WHERE id = ?", [credential.id])


def set_status(con: duckdb.DuckDBPyConnection, credential_id: int, status: str, error: str | None) -> None:
    """Active after a pull that logged in and took its files, Error with the reason after one
    that failed. The seed's Updated Date is "the date of the last successful data update":
    only Active moves it (an Error moved it too, so a login that never worked read as
    updated at its last failure; app audit)."""
    con.execute(
        "UPDATE credentials SET status = ?, last_error = ?, "
        "updated_at = CASE WHEN ? = 'Active' THEN current_timestamp ELSE updated_at END WHERE id = ?",
        [status, error, status, credential_id],
    )


def delete(con: duckdb.DuckDBPyConnection, credential_id: int) -> None:
    con.execute("DELETE FROM credential_connections WHERE credential_id = ?", [credential_id])
    con.execute("DELETE FROM credentials WHERE id = ?", [credential_id])


def public_keys(con: duckdb.DuckDBPyConnection, credential_id: int) -> list[str]:
    """A provisioned login's authorized public keys, as OpenSSH lines."""
    row = con.execute("SELECT public_keys FROM credentials WHERE id = ?", [credential_id]).fetchone()
    return [line for line in (row[0] or "").splitlines() if line.strip()] if row else []


def set_public_keys(con: duckdb.DuckDBPyConnection, credential_id: int, lines: list[str]) -> None:
    con.execute(
        "UPDATE credentials SET public_keys = ?, updated_at = current_timestamp WHERE id = ?",
        ["\n".join(lines) or None, credential_id],
    )


def keys_by_username(con: duckdb.DuckDBPyConnection, username: str) -> tuple[Credential, list[str]] | None:
    """A provisioned login and its authorized public keys (for our hosted SFTP server)."""
    row = con.execute(
        "SELECT id, public_keys FROM credentials WHERE username = ? AND kind = 'provisioned'", [username]
    ).fetchone()
    if row is None:
        return None
    return get(con, int(row[0])), [line for line in (row[1] or "").splitlines() if line.strip()]


def follow_partner(con: duckdb.DuckDBPyConnection, connection_id: int, partner_id: int) -> None:
    """A connection moved to another partner: the credentials only it uses move with it."""
    con.execute(
        "UPDATE credentials SET partner_id = ?, updated_at = current_timestamp WHERE id IN "
        "(SELECT credential_id FROM credential_connections WHERE connection_id = ?) AND id NOT IN "
        "(SELECT credential_id FROM credential_connections WHERE connection_id <> ?)",
        [partner_id, connection_id, connection_id],
    )


def unlink(con: duckdb.DuckDBPyConnection, credential_id: int, connection_id: int) -> None:
    """The connection stops using a set others keep; its owner passes on if it was this one."""
    con.execute(
        "DELETE FROM credential_connections WHERE credential_id = ? AND connection_id = ?",
        [credential_id, connection_id],
    )
    con.execute(
        "UPDATE credentials SET connection_id = (SELECT min(u.connection_id) FROM credential_connections u "
        "WHERE u.credential_id = credentials.id), updated_at = current_timestamp "
        "WHERE id = ? AND connection_id = ?",
        [credential_id, connection_id],
    )
