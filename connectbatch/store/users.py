"""Users of the app. Passwords arrive here already hashed (connectbatch.secrets)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from connectbatch.models import Role, User

_SELECT = "SELECT id, name, role, disabled, failed_logins, last_failed_at, created_at FROM users"


def _user(row: tuple[Any, ...]) -> User:
    return User(
        id=int(row[0]), name=row[1], role=Role(row[2]), disabled=bool(row[3]),
        failed_logins=int(row[4]), last_failed_at=row[5], created_at=row[6],
    )  # fmt: skip


def add(con: duckdb.DuckDBPyConnection, name: str, role: Role, password_hash: str) -> User:
    row = con.execute(
        "INSERT INTO users (name, role, password_hash) VALUES (?, ?, ?) RETURNING id",
        [name, str(role), password_hash],
    ).fetchone()
    assert row is not None
    found = get(con, name)
    assert found is not None
    return found


def get(con: duckdb.DuckDBPyConnection, name: str) -> User | None:
    row = con.execute(f"{_SELECT} WHERE name = ?", [name]).fetchone()
    return None if row is None else _user(row)


def with_hash(con: duckdb.DuckDBPyConnection, name: str) -> tuple[User, str] | None:
    """A user and the stored password hash (for logging in only)."""
    row = con.execute("SELECT password_hash FROM users WHERE name = ?", [name]).fetchone()
    found = get(con, name)
    if row is None or found is None:
        return None
    return found, str(row[0])


def list_all(con: duckdb.DuckDBPyConnection) -> list[User]:
    return [_user(row) for row in con.execute(f"{_SELECT} ORDER BY name").fetchall()]


def set_disabled(con: duckdb.DuckDBPyConnection, name: str, disabled: bool) -> None:
    con.execute("UPDATE users SET disabled = ? WHERE name = ?", [disabled, name])


def set_password(con: duckdb.DuckDBPyConnection, name: str, password_hash: str) -> None:
    """A new password: the login works again at once (enabled, no failures held against it)."""
    con.execute(
        "UPDATE users SET password_hash = ?, disabled = FALSE, failed_logins = 0, last_failed_at = NULL "
        "WHERE name = ?",
        [password_hash, name],
    )


def record_failure(con: duckdb.DuckDBPyConnection, name: str, when: dt.datetime, leak: dt.timedelta) -> None:
    """One more failed login for the name, from any client: the count as of the last failure,
    less one per `leak` since (whole steps; `services.users.name_level` reads it the same way),
    plus this one. In one statement, so that failures at the same time are all counted."""
    con.execute(
        "UPDATE users SET failed_logins = 1 + CASE WHEN last_failed_at IS NULL THEN 0 ELSE greatest("
        "failed_logins - greatest(date_diff('microsecond', last_failed_at, ?::TIMESTAMPTZ), 0) // ?, 0) END, "
        "last_failed_at = ? WHERE name = ?",
        [when, leak // dt.timedelta(microseconds=1), when, name],
    )


def clear_failures(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute("UPDATE users SET failed_logins = 0, last_failed_at = NULL WHERE name = ?", [name])


def replace_hash(con: duckdb.DuckDBPyConnection, name: str, old_hash: str, new_hash: str) -> None:
    """The same password hashed again at a higher cost. Only if the hash is still `old_hash`:
    a password an admin set meanwhile is not overwritten with the one just used."""
    con.execute(
        "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
        [new_hash, name, old_hash],
    )
