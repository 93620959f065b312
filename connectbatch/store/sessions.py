"""Browser sessions of the app and their handoff tokens, by token hash (services/sessions.py)."""

from __future__ import annotations

import datetime as dt

import duckdb

Found = tuple[str, dt.datetime, dt.datetime]  # user name, logged in at, expires at


def add(
    con: duckdb.DuckDBPyConnection, token_hash: str, kind: str, user_name: str,
    logged_in_at: dt.datetime, expires_at: dt.datetime, handoff_hash: str | None = None,
) -> None:  # fmt: skip
    con.execute(
        "INSERT INTO app_sessions (token_hash, kind, user_name, logged_in_at, expires_at, handoff_hash) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [token_hash, kind, user_name, logged_in_at, expires_at, handoff_hash],
    )


def get(con: duckdb.DuckDBPyConnection, token_hash: str, kind: str, now: dt.datetime) -> Found | None:
    """The live token of `kind` with this hash: (user name, logged in at, expires at)."""
    row = con.execute(
        "SELECT user_name, logged_in_at, expires_at FROM app_sessions "
        "WHERE token_hash = ? AND kind = ? AND expires_at > ?",
        [token_hash, kind, now],
    ).fetchone()
    return None if row is None else (str(row[0]), row[1], row[2])


def of_handoff(con: duckdb.DuckDBPyConnection, handoff_hash: str) -> str | None:
    """The hash of the session the handoff was traded for, None while it is not (yet)."""
    row = con.execute(
        "SELECT token_hash FROM app_sessions WHERE kind = 'session' AND handoff_hash = ?", [handoff_hash]
    ).fetchone()
    return None if row is None else str(row[0])


def remove(con: duckdb.DuckDBPyConnection, token_hash: str) -> None:
    con.execute("DELETE FROM app_sessions WHERE token_hash = ?", [token_hash])


def remove_handoff(con: duckdb.DuckDBPyConnection, handoff_hash: str) -> None:
    """The handoff token and the session it was traded for, if it was."""
    con.execute(
        "DELETE FROM app_sessions WHERE token_hash = ? OR handoff_hash = ?", [handoff_hash, handoff_hash]
    )


def remove_of_user(con: duckdb.DuckDBPyConnection, user_name: str) -> None:
    con.execute("DELETE FROM app_sessions WHERE user_name = ?", [user_name])


def remove_expired(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> None:
    con.execute("DELETE FROM app_sessions WHERE expires_at <= ?", [now])
