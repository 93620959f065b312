"""The mail outbox's rows (pipeline/outbox.py): one per message, from queued to sent or given up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import duckdb

from connectbatch.models import MailState

_FIELDS = (
    "id, kind, connection_id, run_id, recipient, subject, path, envelope_from, state, attempts, "
    "next_attempt_at, last_error, created_at, sent_at"
)


@dataclass(frozen=True)
class Queued:
    """One message of the outbox. `recipient` and `subject` may hold partner text."""

    id: int
    kind: str
    connection_id: int | None
    run_id: int | None
    recipient: str
    subject: str
    path: str
    envelope_from: str | None
    state: MailState
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None


def _select(con: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> list[Queued]:
    rows = con.execute(f"SELECT {_FIELDS} FROM mail_outbox {where}", params).fetchall()
    return [replace(queued, state=MailState(queued.state)) for queued in (Queued(*row) for row in rows)]


def add(
    con: duckdb.DuckDBPyConnection,
    *,
    kind: str,
    connection_id: int | None,
    run_id: int | None,
    recipient: str,
    subject: str,
    path: str,
    envelope_from: str | None,
    now: dt.datetime,
) -> int:
    row = con.execute(
        "INSERT INTO mail_outbox (kind, connection_id, run_id, recipient, subject, path, envelope_from, "
        "state, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [kind, connection_id, run_id, recipient, subject, path, envelope_from, MailState.PENDING, now, now],
    ).fetchone()
    assert row is not None
    return int(row[0])


def get(con: duckdb.DuckDBPyConnection, message_id: int) -> Queued:
    found = _select(con, "WHERE id = ?", [message_id])
    if not found:
        raise LookupError(f"no queued mail with id {message_id}")
    return found[0]


def due(
    con: duckdb.DuckDBPyConnection, now: dt.datetime, stale_before: dt.datetime, limit: int
) -> list[Queued]:
    """Messages to try now, oldest first: pending ones whose time has come, and ones a
    sender claimed before `stale_before` and never settled (it died mid-send)."""
    return _select(
        con,
        "WHERE (state = ? AND next_attempt_at <= ?) OR (state = ? AND claimed_at < ?) ORDER BY id LIMIT ?",
        [MailState.PENDING, now, MailState.SENDING, stale_before, limit],
    )


def claim(con: duckdb.DuckDBPyConnection, message: Queued, now: dt.datetime) -> bool:
    """Take `message` for sending; False when another sender took or settled it meanwhile."""
    row = con.execute(
        "UPDATE mail_outbox SET state = ?, claimed_at = ?, attempts = attempts + 1 "
        "WHERE id = ? AND state = ? AND attempts = ? RETURNING id",
        [MailState.SENDING, now, message.id, message.state, message.attempts],
    ).fetchall()
    return bool(row)


def settle(
    con: duckdb.DuckDBPyConnection,
    message_id: int,
    state: MailState,
    now: dt.datetime,
    *,
    error: str | None = None,
    next_attempt_at: dt.datetime | None = None,
) -> None:
    """After a try: SENT, PENDING again (with when to try next and why it failed), or FAILED."""
    con.execute(
        "UPDATE mail_outbox SET state = ?, last_error = coalesce(?, last_error), "
        "next_attempt_at = coalesce(?, next_attempt_at), sent_at = CASE WHEN ? = ? THEN ? END "
        "WHERE id = ?",
        [state, error, next_attempt_at, state, MailState.SENT, now, message_id],
    )


def of_run(con: duckdb.DuckDBPyConnection, run_id: int) -> list[Queued]:
    """The messages about a run (its results), oldest first."""
    return _select(con, "WHERE run_id = ? ORDER BY id", [run_id])


def spooled(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The spool files queued messages name (sent and given-up ones have none left)."""
    rows = con.execute(
        "SELECT path FROM mail_outbox WHERE state IN (?, ?)", [MailState.PENDING, MailState.SENDING]
    ).fetchall()
    return {str(r[0]) for r in rows}
