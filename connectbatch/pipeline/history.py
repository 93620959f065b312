"""A connection's history of decisions that have no run of their own (`store.events`):
a mail that brought nothing we could take (or was too large to download), a scheduled
trigger skipped while a run was going, uploads to our servers refused for the connection's
push quota.

Each is one line, recorded once: a mail by its Message-ID (listed again after a failed flag,
it is not recorded or answered twice), skipped triggers coalesced per run they waited on
("skipped 3 triggers since 14:05 while run 12 was going"), quota refusals per hour (a login
retrying a full folder in a loop adds to one line, not a line per attempt).

A mail that brought nothing, or was too large, is answered, so the sender learns why, but
never when answering could start a loop or hit an innocent third party (backscatter): never
to auto-generated mail (Auto-Submitted, Precedence bulk/list/junk, a mailing list, an empty
Return-Path or a MAILER-DAEMON sender), never to a sender outside the connection's allowed
senders (the transport refuses those before), on a pull from the partner's own mailbox only
to those it names, and at most `MAX_ANSWERS` per sender per `ANSWER_WINDOW` (dry-run reports
have a budget of their own).
"""

from __future__ import annotations

import datetime as dt
import email
import email.utils
import logging
from collections.abc import Mapping

from connectbatch.escaping import visible
from connectbatch.models import Connection, Methodology
from connectbatch.pipeline import mailer
from connectbatch.pipeline.outbox import Outbox
from connectbatch.settings import SmtpSettings
from connectbatch.store import Database
from connectbatch.store import events as event_store
from connectbatch.store import runs as run_store
from connectbatch.store.events import ConnectionEvent

log = logging.getLogger("connectbatch.pipeline.history")

MAX_ANSWERS = 3
ANSWERED_KINDS = (event_store.MAIL_UNMATCHED, event_store.MAIL_TOO_LARGE)  # counted together
ANSWER_WINDOW = dt.timedelta(days=1)
# Extra keys an e-mail transport sets on the stand-in for a message it took nothing from;
# TOO_LARGE holds the reason when it was not even downloaded (its size and the limit).
UNMATCHED = "unmatched"
TOO_LARGE = "too_large"
# TNEF is set when an attachment was Outlook's rich-text wrapper (winmail.dat) that could not
# be opened (imap/tnef.py takes the files out of a readable one): the sender must send the mail
# as HTML or plain text instead.
TNEF = "tnef"
REPORT = "report"  # a delivery report (`delivery_report`): why
TNEF_HELP = (
    "winmail.dat is Outlook's rich-text (TNEF) wrapper, which hides the real attachments: send the "
    "mail as HTML or plain text, not Rich Text"
)


def auto_generated(headers: bytes) -> str | None:
    """Why a message must not be answered automatically (RFC 3834 and common practice), or
    None when a person may be behind it."""
    parsed = email.message_from_bytes(headers)
    auto = (parsed.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = (parsed.get("Precedence") or "").strip().lower()
    if precedence in {"bulk", "list", "junk"}:
        return f"Precedence: {precedence}"
    if parsed.get("List-Id") or parsed.get("List-Unsubscribe"):
        return "a mailing list message"
    return_path = parsed.get("Return-Path")
    if return_path is not None and return_path.strip() in {"<>", ""}:
        return BOUNCE
    senders = [addr.lower() for _, addr in email.utils.getaddresses(parsed.get_all("From", []))]
    if any(s.split("@")[0] in {"mailer-daemon", "postmaster"} for s in senders):
        return MAIL_SYSTEM
    return None


BOUNCE = "an empty Return-Path (a bounce)"
MAIL_SYSTEM = "sent by a mail system (MAILER-DAEMON)"


def delivery_report(headers: bytes, content_type: str) -> str | None:
    """Why a message is a report on a mail sent earlier (a bounce, a read receipt): its
    attachments are that mail coming back, never a partner's file; None when it is not one.
    Taken as files, the bounce of a results mail was loaded (the run and the connection
    Failed, a new results mail went out), and that mail's bounce came back the same way: a
    mail loop (an e-mail audit)."""
    if content_type.strip().lower() == "multipart/report":
        return "a delivery report (a bounce or a read receipt)"
    why = auto_generated(headers)
    return why if why in (BOUNCE, MAIL_SYSTEM) else None


def reply_address(headers: bytes) -> str | None:
    """Where an answer goes: the one Reply-To address, else the one From address. Not one
    with a control character (a quoted local part can hold a folded line break): it could
    never be a header of the answer."""
    parsed = email.message_from_bytes(headers)
    for header in ("Reply-To", "From"):
        found = [a.strip() for _, a in email.utils.getaddresses(parsed.get_all(header, [])) if a.strip()]
        if len(found) == 1 and "@" in found[0] and found[0].isprintable():
            return found[0].lower()
        if found:
            return None  # several addresses: whom to answer is not clear
    return None


def unmatched_mail(
    db: Database, outbox: Outbox, connection: Connection, extra: Mapping[str, str], now: dt.datetime
) -> ConnectionEvent | None:
    """Record a mail that brought nothing matching, or was too large to download (`extra`
    from the transport's stand-in), and answer its sender when that is safe, through the
    outbox (kept and tried again while the SMTP server is down; one given up is a
    `mail_failed` line of the history). None when the mail was recorded before."""
    smtp = outbox.smtp
    names = [n for n in extra.get("names", "").split("\n") if n]
    subject = extra.get("subject", "")
    sender = extra.get("reply_to") or None
    too_large = extra.get(TOO_LARGE, "")
    if too_large:
        what = too_large
    elif extra.get(REPORT):
        what = f"{extra[REPORT]}: nothing taken from it (what it carries is a mail coming back)"
    elif extra.get(TNEF):
        what = f"{len(names)} attachment(s) ({', '.join(names)}), none taken: {TNEF_HELP}"
    elif names:
        what = f"{len(names)} attachment(s) ({', '.join(names)}), none matching {connection.pattern}"
    else:
        what = f"no attachment (expected files matching {connection.pattern})"
    message = f"mail from {extra.get('from') or 'no sender'} {subject!r}: {what}"
    kind = event_store.MAIL_TOO_LARGE if too_large else event_store.MAIL_UNMATCHED
    key = f"mail:{extra.get('message_id') or extra.get('where', '')}"
    with db.transaction() as con:
        event = event_store.record(con, connection.id, kind, message, now, sender=sender, dedupe_key=key)
    if event is None:
        return None
    why_not = _why_not_answer(db, smtp, extra, sender, now, connection)
    if why_not is None and smtp is not None and sender is not None:
        try:
            answer = mailer.compose_unmatched(
                smtp, sender, connection, subject=subject, message_id=extra.get("message_id", ""),
                attachments=names, pattern=connection.pattern, too_large=too_large,
                tnef=TNEF_HELP if extra.get(TNEF) else "",
            )  # fmt: skip
            outbox.answer(answer, connection.id)
        except Exception:  # partner text no header takes, the database busy, the disk full:
            # the mail stays recorded, and the pull goes on
            log.exception("could not queue an answer", extra={"connection_id": connection.id})
            why_not = "the answer could not be queued"
        else:
            with db.transaction() as con:
                event_store.mark_answered(con, event.id)
                return event_store.get(con, event.id)
    with db.transaction() as con:
        event_store.set_message(con, event.id, f"{message}; not answered: {why_not}")
        return event_store.get(con, event.id)


def _why_not_answer(
    db: Database, smtp: SmtpSettings | None, extra: Mapping[str, str], sender: str | None, now: dt.datetime,
    connection: Connection,
) -> str | None:  # fmt: skip
    if extra.get("auto"):
        return f"auto-generated mail ({extra['auto']})"
    if sender is None:
        return "no single address to answer"
    if smtp is None:
        return "no SMTP server configured"
    if connection.methodology is Methodology.PULL and not getattr(connection.transfer, "allowed_senders", ()):
        # The partner's own mailbox: anyone writes to it (colleagues, newsletters), not only
        # those who send us files; they were answered (an e-mail audit). With allowed
        # senders, only those reach here.
        return "a mail in the partner's own mailbox from a sender the connection does not name"
    with db.connect() as con:
        sent = event_store.answers_since(con, sender, now - ANSWER_WINDOW, ANSWERED_KINDS)
    if sent >= MAX_ANSWERS:
        return f"{sent} answers already sent to this sender in the last 24 hours"
    return None


def skipped_trigger(db: Database, connection_id: int, now: dt.datetime) -> ConnectionEvent:
    """A scheduled trigger that found a run still going: one line per run it waited on,
    counting the skips ("skipped 3 triggers since 14:05 while run 12 was going")."""
    with db.transaction() as con:
        going = [r for r in run_store.in_progress(con) if r.connection_id == connection_id]
        run_id = going[0].id if going else None
        key = f"trigger-skipped:{run_id if run_id is not None else now.strftime('%Y%m%d%H')}"
        existing = event_store.by_key(con, connection_id, key)
        if existing is None:
            created = event_store.record(
                con, connection_id, event_store.TRIGGER_SKIPPED,
                _skipped_line(1, now, run_id), now, run_id=run_id, dedupe_key=key,
            )  # fmt: skip
            assert created is not None
            return created
        return event_store.bump(con, existing.id, _skipped_line(existing.count + 1, existing.at, run_id), now)


def _skipped_line(count: int, since: dt.datetime, run_id: int | None) -> str:
    going = f"run {run_id}" if run_id is not None else "a run"
    what = "a scheduled trigger" if count == 1 else f"{count} scheduled triggers"
    return f"skipped {what} since {since.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC while {going} was going"


def results_not_written(db: Database, connection_id: int, run_id: int, file_name: str, why: str) -> None:
    """A loaded file whose results file could not be written (a full disk): said in the
    connection's history (the CLI logs nothing), so someone frees space and answers by hand."""
    line = (
        f"run {run_id}: {visible(file_name)} was loaded, but its results file could not be written "
        f"({visible(why)}); the partner has no answer for it"
    )
    with db.transaction() as con:
        event_store.record(con, connection_id, event_store.RESULTS_NOT_WRITTEN, line, dt.datetime.now(dt.UTC))


def push_over_quota(
    db: Database, connection_id: int, file_name: str, limit: int, now: dt.datetime
) -> ConnectionEvent:
    """An upload refused because the connection's push folder would pass its quota: one line
    per hour, counting the refusals and naming the latest file (partner text: escape it)."""
    key = f"push-over-quota:{now.astimezone(dt.UTC):%Y%m%d%H}"
    with db.transaction() as con:
        existing = event_store.by_key(con, connection_id, key)
        if existing is None:
            line = _over_quota_line(1, now, file_name, limit)
            created = event_store.record(
                con, connection_id, event_store.PUSH_OVER_QUOTA, line, now, dedupe_key=key
            )
            assert created is not None
            return created
        line = _over_quota_line(existing.count + 1, existing.at, file_name, limit)
        return event_store.bump(con, existing.id, line, now)


def _over_quota_line(count: int, since: dt.datetime, file_name: str, limit: int) -> str:
    what = f"{file_name}: upload refused"
    if count > 1:
        what = (
            f"{count} uploads refused since {since.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC; the latest, {what}"
        )
    return (
        f"{what}: the files waiting in the connection's push folder would take more than its quota "
        f"of {limit} bytes (CONNECTBATCH_PUSH_QUOTA_BYTES); the partial file was removed and "
        "nothing was loaded. Files wait there until they are loaded (a broken upload or a file "
        "no connection took: until CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS)."
    )
