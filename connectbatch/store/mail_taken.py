"""Rows of `mail_taken` (migration 028): the plus-addresses of our shared inbound mailbox that
took their part of one stored copy of a mail (`transfer.pull.imap.shared` says why)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from connectbatch.store.db import Database


class TakenCopies:
    """`SharedCopies` over the store, for the mailbox's `participants`: the addresses of our
    e-mail push connections and their dry-run addresses, lower case."""

    def __init__(self, db: Database, participants: Iterable[str], clock: Callable[[], dt.datetime]) -> None:
        self._db = db
        self.participants = frozenset(a.lower() for a in participants)
        self._clock = clock

    def taken(self, mailbox: str, uidvalidity: str, recipient: str) -> set[int]:
        with self._db.connect() as con:
            rows = con.execute(
                "SELECT uid FROM mail_taken WHERE mailbox = ? AND uidvalidity = ? AND recipient = ?",
                [mailbox, uidvalidity, recipient.lower()],
            ).fetchall()
        return {int(uid) for (uid,) in rows}

    def take(self, mailbox: str, uidvalidity: str, uid: int, recipient: str, named: frozenset[str]) -> bool:
        """Record `recipient`'s part; when every participant `named` has taken it, the copy's
        rows go (the caller marks it now, and the table keeps only copies still waited on)."""
        waiting = {a.lower() for a in named} & self.participants
        with self._db.transaction() as con:
            con.execute(
                "INSERT INTO mail_taken (mailbox, uidvalidity, uid, recipient, taken_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [mailbox, uidvalidity, uid, recipient.lower(), self._clock()],
            )
            copy = [mailbox, uidvalidity, uid]
            where = "WHERE mailbox = ? AND uidvalidity = ? AND uid = ?"
            rows = con.execute(f"SELECT recipient FROM mail_taken {where}", copy).fetchall()
            done = waiting <= {str(r) for (r,) in rows}
            if done:  # marked next: a copy that is listed again is settled by the ledger
                con.execute(f"DELETE FROM mail_taken {where}", copy)
        return done
