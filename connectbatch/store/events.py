"""A connection's history beyond its runs (`connection_events`): decisions with no run of
their own, each recorded once (`dedupe_key`), or coalesced into one growing line."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

# Kinds of event; the table takes any string, these are the ones ConnectBatch writes.
MAIL_UNMATCHED = "mail_unmatched"
MAIL_TOO_LARGE = "mail_too_large"  # a mail refused for its size, never downloaded
TRIGGER_SKIPPED = "trigger_skipped"
PUSH_OVER_QUOTA = "push_over_quota"  # uploads refused for the push folder's quota
MAIL_FAILED = "mail_failed"  # the outbox gave up on a message (pipeline/outbox.py)
RESULTS_NOT_WRITTEN = "results_not_written"  # a loaded file's results file could not be written
EXPORT_FAILED = "export_failed"  # an outbound connection's export failed (services.export_now)


@dataclass(frozen=True)
class ConnectionEvent:
    """One line of a connection's history. `message` may hold partner text (a file name,
    a subject): escape it (`escaping.visible`) wherever it is shown."""

    id: int
    connection_id: int
    at: dt.datetime
    last_at: dt.datetime
    kind: str
    message: str
    count: int
    run_id: int | None
    sender: str | None
    answered: bool
    dedupe_key: str | None


_FIELDS = (
    "id, connection_id, occurred_at, last_at, kind, message, count, run_id, sender, answered, dedupe_key"
)


def _events(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[ConnectionEvent]:
    rows = con.execute(f"SELECT {_FIELDS} FROM connection_events {where}", params).fetchall()
    return [ConnectionEvent(*row) for row in rows]


def get(con: duckdb.DuckDBPyConnection, event_id: int) -> ConnectionEvent:
    found = _events(con, "WHERE id = ?", [event_id])
    if not found:
        raise LookupError(f"no connection event with id {event_id}")
    return found[0]


def by_key(con: duckdb.DuckDBPyConnection, connection_id: int, dedupe_key: str) -> ConnectionEvent | None:
    found = _events(
        con, "WHERE connection_id = ? AND dedupe_key = ? ORDER BY id LIMIT 1", [connection_id, dedupe_key]
    )
    return found[0] if found else None


def record(
    con: duckdb.DuckDBPyConnection,
    connection_id: int,
    kind: str,
    message: str,
    at: dt.datetime,
    *,
    run_id: int | None = None,
    sender: str | None = None,
    dedupe_key: str | None = None,
) -> ConnectionEvent | None:
    """Add one event; None (nothing written) when one with the same `dedupe_key` exists."""
    if dedupe_key is not None and by_key(con, connection_id, dedupe_key) is not None:
        return None
    row = con.execute(
        "INSERT INTO connection_events (connection_id, occurred_at, last_at, kind, message, run_id, sender, "
        "dedupe_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [connection_id, at, at, kind, message, run_id, sender, dedupe_key],
    ).fetchone()
    assert row is not None
    return get(con, int(row[0]))


def bump(con: duckdb.DuckDBPyConnection, event_id: int, message: str, at: dt.datetime) -> ConnectionEvent:
    """One more occurrence of a coalesced event: count + 1, its line rewritten."""
    con.execute(
        "UPDATE connection_events SET count = count + 1, message = ?, last_at = ? WHERE id = ?",
        [message, at, event_id],
    )
    return get(con, event_id)


def set_message(con: duckdb.DuckDBPyConnection, event_id: int, message: str) -> None:
    con.execute("UPDATE connection_events SET message = ? WHERE id = ?", [message, event_id])


def mark_answered(con: duckdb.DuckDBPyConnection, event_id: int) -> None:
    con.execute("UPDATE connection_events SET answered = TRUE WHERE id = ?", [event_id])


def answers_since(
    con: duckdb.DuckDBPyConnection, sender: str, since: dt.datetime, kinds: tuple[str, ...]
) -> int:
    """How many answers of `kinds` went to `sender` (any connection) since `since`: a rate
    limit. Dry-run reports and the answers to mails that brought nothing each have their
    own: a partner's fourth dry run of a day left its real file's mail unanswered (an e-mail
    audit)."""
    row = con.execute(
        "SELECT count(*) FROM connection_events WHERE sender = ? AND answered AND occurred_at >= ? "
        "AND list_contains(?::VARCHAR[], kind)",
        [sender, since, list(kinds)],
    ).fetchone()
    return int(row[0]) if row else 0


def of_connection(
    con: duckdb.DuckDBPyConnection, connection_id: int | None = None, limit: int = 200
) -> list[ConnectionEvent]:
    """Newest first; all connections when `connection_id` is None."""
    if connection_id is None:
        return _events(con, "ORDER BY last_at DESC, id DESC LIMIT ?", [limit])
    return _events(
        con, "WHERE connection_id = ? ORDER BY last_at DESC, id DESC LIMIT ?", [connection_id, limit]
    )
