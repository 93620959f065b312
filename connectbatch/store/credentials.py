"""Credentials of connections. Secrets arrive here already encrypted or hashed."""

from __future__ import annotations

from typing import Any

import duckdb

from connectbatch.models import Credential
from connectbatch.transfer.specs import AuthKind

# `host_key` is no longer written (pins live in store/host_keys.py, per server since
# migration 007); it is still read so the Credential shape stays the same.
_SELECT = (
    "SELECT id, connection_id, name, kind, username, is_main, status, return_email, host_key, "
    "last_error, secret IS NOT NULL OR password_hash IS NOT NULL, created_at, updated_at, auth, "
    "passphrase IS NOT NULL FROM credentials"
)


def _credential(row: tuple[Any, ...]) -> Credential:
    credential = Credential(*row)
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
) -> Credential:
    """Add a credential as the connection's main one; earlier ones become secondary."""
    con.execute(
        "UPDATE credentials SET is_main = FALSE, updated_at = current_timestamp WHERE connection_id = ?",
        [connection_id],
    )
    row = con.execute(
        "INSERT INTO credentials (connection_id, name, kind, username, secret, password_hash, "
        "return_email, auth, passphrase, is_main) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE) RETURNING id",
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
        ],
    ).fetchone()
    assert row is not None
    return get(con, int(row[0]))


def get(con: duckdb.DuckDBPyConnection, credential_id: int) -> Credential:
    found = _select(con, "WHERE id = ?", [credential_id])
    if not found:
        raise LookupError(f"no credential with id {credential_id}")
    return found[0]


def of_connection(con: duckdb.DuckDBPyConnection, connection_id: int) -> list[Credential]:
    return _select(con, "WHERE connection_id = ? ORDER BY is_main DESC, id DESC", [connection_id])


def main_secret(
    con: duckdb.DuckDBPyConnection, connection_id: int
) -> tuple[Credential, bytes | None, bytes | None] | None:
    """The main credential with its encrypted secret and key passphrase (for transports
    that log in)."""
    row = con.execute(
        "SELECT id, secret, passphrase FROM credentials WHERE connection_id = ? AND is_main "
        "ORDER BY id DESC LIMIT 1",
        [connection_id],
    ).fetchone()
    if row is None:
        return None
    return get(con, int(row[0])), row[1], row[2]


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
    con.execute(
        "UPDATE credentials SET is_main = (id = ?), updated_at = current_timestamp WHERE connection_id = ?",
        [credential.id, credential.connection_id],
    )


def set_status(con: duckdb.DuckDBPyConnection, credential_id: int, status: str, error: str | None) -> None:
    con.execute(
        "UPDATE credentials SET status = ?, last_error = ?, updated_at = current_timestamp WHERE id = ?",
        [status, error, credential_id],
    )


def delete(con: duckdb.DuckDBPyConnection, credential_id: int) -> None:
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
