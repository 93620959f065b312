"""One stored copy of a mail, shared by the several plus-addresses it names.

A mail server may keep one copy of a mail addressed to several of a mailbox's
plus-addresses (several of our e-mail push connections in To/Cc, with no Delivered-To per
copy, or one rewritten to the mailbox's own address). Marking that copy processed when the
first connection had taken its part hid it from the others: their files were never taken.

With `SharedCopies` given (`ImapTransport.shared`), a connection that has finished a copy
records so instead of marking it, and the copy is marked only when every addressed
participant (our connections' addresses; other addresses in To/Cc do not count) has
recorded it. Until then a connection's listing leaves out the copies it recorded, so it
neither takes its part twice nor downloads the copy on every poll. The records live in the
store (`store.mail_taken`); the transport knows nothing of it.
"""

from __future__ import annotations

from typing import Protocol


class SharedCopies(Protocol):
    """Which plus-addresses have taken their part of each copy in a shared mailbox."""

    def taken(self, mailbox: str, uidvalidity: str, recipient: str) -> set[int]:
        """UIDs of the copies in `mailbox` (account and folder) `recipient` has taken."""

    def take(self, mailbox: str, uidvalidity: str, uid: int, recipient: str, named: frozenset[str]) -> bool:
        """Record that `recipient` took its part of a copy naming `named` (lower-case
        addresses); True when every participant among them has now taken it (mark it)."""
