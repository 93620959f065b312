"""Pinned SFTP host keys, one per server (host and port).

The pin belongs to the server, not to a credential: rotating the login of a connection must
not reset trust in the server, and a changed key must fail every credential alike."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

DEFAULT_SSH_PORT = 22


@dataclass(frozen=True)
class HostKey:
    """What we know of one server's key: the pinned one, and a different one it last showed."""

    host: str
    port: int
    host_key: str | None
    fingerprint: str | None
    pinned_at: dt.datetime | None
    presented_key: str | None
    presented_fingerprint: str | None
    presented_at: dt.datetime | None


def server(host: str | None, port: int | None) -> tuple[str, int]:
    """The key a server is filed under: host names compare case-insensitively, no port = 22."""
    return (host or "").strip().lower(), port or DEFAULT_SSH_PORT


_SELECT = (
    "SELECT host, port, host_key, fingerprint, pinned_at, presented_key, presented_fingerprint, "
    "presented_at FROM host_keys WHERE host = ? AND port = ?"
)


def get(con: duckdb.DuckDBPyConnection, host: str | None, port: int | None) -> HostKey | None:
    row: tuple[Any, ...] | None = con.execute(_SELECT, list(server(host, port))).fetchone()
    return HostKey(*row) if row is not None else None


def pin_first(
    con: duckdb.DuckDBPyConnection, host: str | None, port: int | None, host_key: str, fingerprint: str
) -> bool:
    """Pin `host_key` when nothing is pinned for the server yet (trust on first use). False
    when a pin already exists: the first one stays, whatever this caller saw."""
    key = list(server(host, port))
    found = get(con, host, port)
    if found is not None and found.host_key is not None:
        return False
    if found is None:
        con.execute(
            "INSERT INTO host_keys (host, port, host_key, fingerprint, pinned_at) "
            "VALUES (?, ?, ?, ?, current_timestamp)",
            [*key, host_key, fingerprint],
        )
    else:
        con.execute(
            "UPDATE host_keys SET host_key = ?, fingerprint = ?, pinned_at = current_timestamp "
            "WHERE host = ? AND port = ?",
            [host_key, fingerprint, *key],
        )
    return True


def record_presented(
    con: duckdb.DuckDBPyConnection, host: str | None, port: int | None, host_key: str, fingerprint: str
) -> None:
    """Remember the different key a server showed, for a person to check and accept."""
    key = list(server(host, port))
    if get(con, host, port) is None:
        con.execute("INSERT INTO host_keys (host, port) VALUES (?, ?)", key)
    con.execute(
        "UPDATE host_keys SET presented_key = ?, presented_fingerprint = ?, "
        "presented_at = current_timestamp WHERE host = ? AND port = ?",
        [host_key, fingerprint, *key],
    )


def accept_presented(con: duckdb.DuckDBPyConnection, host: str | None, port: int | None) -> None:
    """Pin the key the server last presented (the caller checked its fingerprint)."""
    con.execute(
        "UPDATE host_keys SET host_key = presented_key, fingerprint = presented_fingerprint, "
        "pinned_at = current_timestamp, presented_key = NULL, presented_fingerprint = NULL, "
        "presented_at = NULL WHERE host = ? AND port = ? AND presented_key IS NOT NULL",
        list(server(host, port)),
    )
