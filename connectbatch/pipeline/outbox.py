"""Outgoing mail, kept until the SMTP server has taken it.

A run's results e-mail used to be sent inside the run, once. An SMTP server that was down
(a relay restarting, greylisting's "try again later") lost the partner's answer for good, and
one that did not answer held every ingest for the SMTP timeout (30 s a file: a push burst
stalled behind it). Now a message (results, status files, alerts, automatic answers) is
spooled (`<home>/outbox/*.eml`, written whole before its row exists) and queued in
`mail_outbox`, and a sender sends it:

* in a long-running process (`connectbatch serve`, the app) a background thread, woken by
  each new message and every POLL_SECONDS, so an ingest never waits on SMTP;
* in a one-shot process (the CLI) `put` tries the due messages right away, as before; what
  fails stays queued for the next sender, in whichever process.

A failure the server calls temporary (4xx, a refused or dropped connection, a timeout) is
tried again after BACKOFF, for up to MAX_AGE; a permanent one (5xx: an unknown mailbox, a
message too large; an address that is not ASCII, which smtplib cannot write) is not. A
message given up is recorded in its connection's history (`mail_failed`, with the server's
words): the results stay in the outbound folder.
A sender that died mid-send leaves its claim, taken again after CLAIM_SECONDS (the message
may then go twice, never zero times).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import logging
import os
import smtplib
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import duckdb

from connectbatch import mail_address
from connectbatch.escaping import visible
from connectbatch.models import MailState
from connectbatch.pipeline import mailer
from connectbatch.settings import Settings, SmtpSettings
from connectbatch.store import Database
from connectbatch.store import connections as connection_store
from connectbatch.store import events as event_store
from connectbatch.store import outbox as store

log = logging.getLogger("connectbatch.pipeline.outbox")

BACKOFF = (60, 300, 900, 1800, 3600)  # seconds before the 2nd, 3rd, ... try; then hourly
MAX_AGE = dt.timedelta(days=2)  # then a message still failing is given up
CLAIM_SECONDS = 600  # a claim older than this was left by a sender that died
POLL_SECONDS = 30.0
ANSWER_ENVELOPE = "<>"  # an automatic answer's envelope sender (RFC 3834): bounces go nowhere
BATCH = 50  # messages one pass takes
# Mail to a connection's partner (results, automatic answers, status files): for an e-mail
# push connection it names the connection's address as Reply-To (`_reply_to`).
PARTNER_KINDS = frozenset({"results", "answer", "status"})


# An address with other characters than ASCII (a return address typed so, a partner's From
# answered) needs SMTPUTF8 (mailer.transmit): a server without it cannot take the message.
NOT_ASCII = (
    "the address is not ASCII, which needs SMTPUTF8, and the SMTP server does not offer it: "
    "give an ASCII address, or send through a server that offers SMTPUTF8"
)


def permanent(exc: Exception) -> bool:
    """Whether the SMTP server refused for good (a 5xx reply), or the message can never be
    offered (an address smtplib cannot write): trying again cannot help."""
    if isinstance(exc, UnicodeError | smtplib.SMTPNotSupportedError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return False  # our configuration: fixed by an operator, then the message goes
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeError | smtplib.SMTPNotSupportedError):
        return NOT_ASCII
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {_text(msg)}" for code, msg in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def tries(attempts: int) -> str:
    """'1 try', '3 tries': how often a message was offered, as the history and the app say it."""
    return "1 try" if attempts == 1 else f"{attempts} tries"


def _undelivered(queued: store.Queued, reason: str) -> str:
    """The history's line for a message given up (partner text in it: escaped when shown)."""
    if queued.kind == "results":
        what, after = f"The results of run {queued.run_id}", " The results files stay in the outbound folder."
    else:
        what, after = f"The e-mail {queued.subject!r}", ""
    return f"{what} could not be sent to {queued.recipient} after {tries(queued.attempts)}: {reason}.{after}"


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


class Outbox:
    """The queue and its sender for one data folder."""

    def __init__(self, settings: Settings, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.smtp: SmtpSettings | None = settings.smtp
        self.inbound_mailbox = settings.inbound_mailbox
        self.folder = settings.home / "outbox"
        self.db = db
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pass = threading.Lock()  # one pass at a time in this process

    # ------------------------------------------------------------------ queueing

    def put(
        self,
        message: EmailMessage,
        kind: str,
        connection_id: int | None,
        run_id: int | None = None,
        envelope_from: str | None = None,
        *,
        dry_run: bool = False,
    ) -> int:
        """Queue `message` (addressed to one recipient in its To header) and see it sent."""
        with self.db.transaction() as con:
            queued = self.queue(con, message, kind, connection_id, run_id, envelope_from, dry_run=dry_run)
        self.kick()
        return queued

    def queue(
        self,
        con: duckdb.DuckDBPyConnection,
        message: EmailMessage,
        kind: str,
        connection_id: int | None,
        run_id: int | None = None,
        envelope_from: str | None = None,
        *,
        dry_run: bool = False,
    ) -> int:
        """`put` inside the caller's transaction, which the message then commits (or rolls
        back) with; the caller calls `kick` once it committed. Sent from the configured
        sender, or with `envelope_from` as the envelope's (`answer`: <>). A message whose To
        header is not one clean address (`mailer.recipient_of`) is given up at once, with its
        history line: sent to what the header parsed to, it reached another mailbox.
        `dry_run`: the message answers a dry run (its Reply-To is the dry-run address)."""
        recipient = mailer.recipient_of(message)
        if recipient is None:
            return self._refuse(con, message, kind, connection_id, run_id, envelope_from)
        if kind in PARTNER_KINDS and connection_id is not None:
            self._reply_to(con, message, connection_id, dry_run)
        mailer.stamp(message, self.clock())
        # as it goes over the wire: CRLF line ends, 7-bit (an SMTP server without 8BITMIME
        # takes it too), so `mailer.transmit` sends the spooled bytes as they are; with an
        # address that is not ASCII, its headers in UTF-8, as SMTPUTF8 carries them (RFC
        # 2047 cannot encode an address: "=?utf-8?q?b=C3=BCro?=@..." reaches no one)
        utf8 = (
            not all(str(message[h] or "").isascii() for h in ("To", "From", "Reply-To"))
            or not (envelope_from or "").isascii()
        )
        policy = (email.policy.SMTPUTF8 if utf8 else email.policy.SMTP).clone(cte_type="7bit")
        path = self._spool(message.as_bytes(policy=policy))
        return store.add(
            con, kind=kind, connection_id=connection_id, run_id=run_id, recipient=recipient,
            subject=str(message["Subject"] or ""), path=path.name, envelope_from=envelope_from,
            now=self.clock(),
        )  # fmt: skip

    def _reply_to(
        self, con: duckdb.DuckDBPyConnection, message: EmailMessage, connection_id: int, dry_run: bool
    ) -> None:
        """Name an e-mail push connection's address as the Reply-To of mail to its partner, so
        that a partner who answers our mail with the corrected file reaches the connection (the
        dry-run address for a dry run's report: a reply to it is tried again, not loaded).
        Before, a reply went to our From address and was lost (an e-mail audit)."""
        connection = connection_store.get_or_none(con, connection_id)
        if connection is None or not mail_address.is_mailed_to(connection) or "Reply-To" in message:
            return
        address = mail_address.dryrun_address if dry_run else mail_address.inbound_address
        message["Reply-To"] = address(self.inbound_mailbox, connection)

    def _refuse(
        self,
        con: duckdb.DuckDBPyConnection,
        message: EmailMessage,
        kind: str,
        connection_id: int | None,
        run_id: int | None,
        envelope_from: str | None,
    ) -> int:
        """Record a message whose address cannot be trusted as given up, never sent, with the
        history line an undelivered mail gets (the address as the header holds it)."""
        try:
            shown = str(message.get("To", "") or message.get(mailer.UNUSABLE_TO, "") or "")
        except mailer.HEADER_ERRORS:  # a header Python cannot parse
            shown = ""
        shown = shown or "(no address)"
        now = self.clock()
        reason = mailer.NOT_ONE_ADDRESS
        queued_id = store.add(
            con, kind=kind, connection_id=connection_id, run_id=run_id, recipient=shown,
            subject=str(message.get("Subject", "") or ""), path="", envelope_from=envelope_from, now=now,
        )  # fmt: skip
        store.settle(con, queued_id, MailState.FAILED, now, error=reason)
        log.error("not sending mail %s to %s: %s", queued_id, visible(shown), reason)
        if connection_id is not None:
            queued = store.get(con, queued_id)
            event_store.record(
                con, connection_id, event_store.MAIL_FAILED, _undelivered(queued, reason), now, run_id=run_id
            )
        return queued_id

    def answer(self, message: EmailMessage, connection_id: int, *, dry_run: bool = False) -> int:
        """Queue an automatic answer (mailer.compose_unmatched, compose_dry_run) and see it
        sent: with an empty envelope sender, so that a bounce of it comes back to nobody and
        cannot start a loop, and kept and tried again like results when the SMTP server is
        down (it used to be sent once and lost)."""
        return self.put(message, "answer", connection_id, envelope_from=ANSWER_ENVELOPE, dry_run=dry_run)

    def kick(self) -> None:
        """Messages were queued: wake the sender, or (no sender in this process) send now."""
        if self.running:
            self._wake.set()
        else:
            self.send_due()

    def _spool(self, data: bytes) -> Path:
        """The message on disk, whole (written, fsynced, renamed) before anything names it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{uuid.uuid4().hex}.eml"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ sending

    def send_due(self) -> int:
        """One pass over the messages due now; how many went out. Never raises."""
        if self.smtp is None:
            return 0
        with self._pass:
            try:
                return self._send_due(self.smtp)
            except Exception:
                log.exception("the mail outbox pass failed")
                return 0

    def _send_due(self, smtp: SmtpSettings) -> int:
        now = self.clock()
        with self.db.connect() as con:
            due = store.due(con, now, now - dt.timedelta(seconds=CLAIM_SECONDS), BATCH)
        sent = 0
        for queued in due:
            with self.db.transaction() as con:
                if not store.claim(con, queued, self.clock()):
                    continue
            sent += self._try(smtp, replace(queued, state=MailState.SENDING, attempts=queued.attempts + 1))
        return sent

    def _try(self, smtp: SmtpSettings, queued: store.Queued) -> int:
        path = self.folder / queued.path
        try:
            data = path.read_bytes()
        except OSError as exc:  # the spool was lost: nothing to send, ever
            self._give_up(queued, f"the spooled message is gone ({exc.strerror or exc})")
            return 0
        try:
            mailer.transmit(smtp, data, queued.recipient, queued.envelope_from)
        except (OSError, smtplib.SMTPException, UnicodeError) as exc:  # never stops the pass
            self._failed(queued, exc)
            return 0
        with self.db.transaction() as con:
            store.settle(con, queued.id, MailState.SENT, self.clock())
        path.unlink(missing_ok=True)
        return 1

    def _failed(self, queued: store.Queued, exc: Exception) -> None:
        reason = _reason(exc)
        now = self.clock()
        if permanent(exc) or now - queued.created_at >= MAX_AGE:
            self._give_up(queued, reason)
            return
        delay = BACKOFF[min(queued.attempts - 1, len(BACKOFF) - 1)]  # attempts: this one included
        log.warning(
            "could not send mail %s to %s (try %d, again in %d s): %s",
            queued.id, visible(queued.recipient), queued.attempts, delay, visible(reason),
        )  # fmt: skip
        with self.db.transaction() as con:
            store.settle(
                con, queued.id, MailState.PENDING, now, error=reason,
                next_attempt_at=now + dt.timedelta(seconds=delay),
            )  # fmt: skip

    def _give_up(self, queued: store.Queued, reason: str) -> None:
        log.error("gave up sending mail %s to %s: %s", queued.id, visible(queued.recipient), visible(reason))
        now = self.clock()
        with self.db.transaction() as con:
            store.settle(con, queued.id, MailState.FAILED, now, error=reason)
            if queued.connection_id is not None:
                event_store.record(
                    con, queued.connection_id, event_store.MAIL_FAILED, _undelivered(queued, reason), now,
                    run_id=queued.run_id,
                )  # fmt: skip
        (self.folder / queued.path).unlink(missing_ok=True)

    def sweep(self, grace: dt.timedelta = dt.timedelta(hours=1)) -> list[Path]:
        """Remove spooled files no queued message names, older than `grace` (a process killed
        between spooling and queueing left them; younger ones may be queued right now)."""
        if not self.folder.is_dir():
            return []
        with self.db.connect() as con:
            named = store.spooled(con)
        cutoff = (self.clock() - grace).timestamp()
        removed = []
        for path in self.folder.iterdir():
            name = path.name.removesuffix(".tmp")
            if name not in named and path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    # ------------------------------------------------------------------ the sender thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Send in the background from now on (a long-running process); nothing without SMTP."""
        if self.smtp is None or self.running:
            return
        self.sweep()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mail-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a message put during it wakes the next one
            self.send_due()
            self._wake.wait(POLL_SECONDS)
