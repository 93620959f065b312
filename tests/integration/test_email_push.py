"""E-mail push end to end: a partner mails a file to its connection's own address
(inbox+<connection>@...), the engine reads the shared mailbox on a real Dovecot and ingests it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage

import pytest
from dovecot import DovecotServer, MailUser, running_dovecot
from helpers import call_csv
from helpers.ports import free_port

from connectbatch.engine import Engine, MailboxSettings
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import Services


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    with running_dovecot() as running:
        yield running


def mail(to: str, name: str, data: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "reports@vendor.example"
    message["To"] = to
    message["Subject"] = "daily calls"
    message.set_content("attached")
    message.add_attachment(data, maintype="text", subtype="csv", filename=name)
    return message.as_bytes()


def test_mail_to_a_connection_address_becomes_a_run_of_that_connection_only(
    server: DovecotServer, services: Services
) -> None:
    box: MailUser = server.add_user()
    services = Services(replace(services.settings, inbound_mailbox=box.address))
    for name in ("Vendor A", "Vendor B"):
        draft = Connection(name, "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                           pattern="calls_*.csv")  # fmt: skip
        services.create_connection(draft)
    address_a = services.inbound_address(services.connection("Vendor A"))
    assert address_a.startswith(box.address.split("@")[0] + "+vendor-a-")
    # The address made from the name alone, which anyone could guess, reaches no connection.
    guessed = box.address.split("@")[0] + "+vendor-a@" + box.address.split("@")[1]
    server.append(box, mail(guessed, "calls_0300.csv", call_csv(2, prefix="guessed")))
    server.append(box, mail(address_a, "calls_0301.csv", call_csv(4, prefix="mail-a")))
    server.append(box, mail(address_a, "notes.txt", b"not a calls file"))

    engine = Engine(services, MailboxSettings(server.host, server.port, box.username, box.password, "plain"))
    first = engine.poll_mailbox()

    assert [(r.connection_id, r.status, r.rows_accepted) for r in first] == [
        (services.connection("Vendor A").id, RunStatus.COMPLETED, 4)
    ]
    assert services.runs("Vendor B") == []  # addressed to A: B never sees it
    assert engine.poll_mailbox() == []  # processed once: the message is marked, no new run
    assert services.count_actions("Vendor A") == 4


def test_a_mail_to_two_connections_delivered_as_a_copy_each_goes_to_each_connection(
    server: DovecotServer, services: Services
) -> None:
    """The mail server stores one copy per recipient, each with the address it was delivered
    to (Delivered-To, X-Original-To), and both copies name both addresses in To/Cc. Vendor A,
    read first, took both copies (the second a duplicate) and marked them: Vendor B's file
    was never taken and nothing said so."""
    box: MailUser = server.add_user()
    services = Services(replace(services.settings, inbound_mailbox=box.address))
    for name, pattern in (("Vendor A", "calls_*.csv"), ("Vendor B", "conv_*.csv")):
        services.create_connection(
            Connection(
                name, "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH, pattern=pattern
            )
        )
    address_a, address_b = (
        services.inbound_address(services.connection(n)) for n in ("Vendor A", "Vendor B")
    )
    message = EmailMessage()
    message["From"] = "reports@vendor.example"
    message["To"] = address_a
    message["Cc"] = address_b.upper()
    message["Subject"] = "calls and conversions"
    message.set_content("both attached")
    message.add_attachment(call_csv(2, prefix="to-a"), maintype="text", subtype="csv", filename="calls_1.csv")
    message.add_attachment(call_csv(3, prefix="to-b"), maintype="text", subtype="csv", filename="conv_1.csv")
    body = message.as_bytes()
    for copy_for in (address_a, address_b):  # as Postfix + Dovecot LMTP deliver it
        server.append(box, f"Delivered-To: {copy_for}\r\nX-Original-To: {copy_for}\r\n".encode() + body)

    engine = Engine(services, MailboxSettings(server.host, server.port, box.username, box.password, "plain"))
    runs = engine.poll_mailbox()

    by_connection = {r.connection_id: (r.files_seen, r.rows_accepted) for r in runs}
    assert by_connection == {
        services.connection("Vendor A").id: (1, 2),
        services.connection("Vendor B").id: (1, 3),
    }
    assert engine.poll_mailbox() == []


def test_a_renamed_connection_keeps_the_address_its_partner_was_given(
    server: DovecotServer, services: Services
) -> None:
    """The address was made from the name each time: a rename moved it, and the partner's
    mail to the address they had been given was no longer taken by any connection."""
    box: MailUser = server.add_user()
    services = Services(replace(services.settings, inbound_mailbox=box.address))
    draft = Connection("CallRail mailbox", "call_conversions", Direction.INBOUND, Method.EMAIL,
                       Methodology.PUSH, pattern="calls_*.csv")  # fmt: skip
    services.create_connection(draft)
    given = services.inbound_address(services.connection("CallRail mailbox"))
    services.update_connection("CallRail mailbox", name="CallRail inbox, renamed")

    renamed = services.connection("CallRail inbox, renamed")
    assert services.inbound_address(renamed) == given
    server.append(box, mail(given, "calls_0302.csv", call_csv(3, prefix="renamed")))
    engine = Engine(services, MailboxSettings(server.host, server.port, box.username, box.password, "plain"))
    assert [(r.connection_id, r.rows_accepted) for r in engine.poll_mailbox()] == [(renamed.id, 3)]
    # Its old name is free; a new connection with it gets an address of its own.
    again, _ = services.create_connection(replace(draft, name="CallRail mailbox"))
    assert services.inbound_address(again) != given


def test_a_long_name_makes_an_address_mail_servers_accept(services: Services) -> None:
    """RFC 5321: at most 64 characters before the "@", the dry-run address included."""
    names = ["Leadwave Media call conversions for the spring campaign, east coast region " + s for s in "AB"]
    for name in names:
        services.create_connection(
            Connection(name, "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH)
        )
    addresses = [services.inbound_address(services.connection(n)) for n in names]
    dry = [services.dryrun_address(services.connection(n)) for n in names]
    assert all(len(a.partition("@")[0]) <= 64 for a in addresses + dry)
    assert addresses[0] != addresses[1]  # the same start, two addresses
    assert addresses[0].partition("@")[0].startswith("inbox+leadwave-media-call-conversions")


# --- silent mail (issue 11, defect 10): recorded in the history, the sender told why ---------

import email as _email  # noqa: E402
import email.utils  # noqa: E402
import gzip  # noqa: E402
import io  # noqa: E402
import zipfile  # noqa: E402

from smtp_server import Inbox, running_smtp  # noqa: E402

from connectbatch.settings import SmtpSettings  # noqa: E402
from connectbatch.transfer.specs import ImapSpec  # noqa: E402


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[Inbox, SmtpSettings]]:
    with running_smtp() as found:
        yield found


def partner_mail(
    to: str,
    *attachments: tuple[str, bytes],
    sender: str = "reports@vendor.example",
    headers: dict[str, str] | None = None,
    subject: str = "daily calls",
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = _email.utils.make_msgid(domain="vendor.example")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content("attached")
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


def zipped(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
    return buffer.getvalue()


@pytest.fixture
def mailbox_setup(
    server: DovecotServer, services: Services, smtp_inbox: tuple[Inbox, SmtpSettings]
) -> Callable[..., tuple[Services, Engine, str, MailUser]]:
    """A push-by-mail connection "Vendor A" (pattern calls_*.csv) on a fresh mail user, SMTP on
    (`max_file_bytes`: CONNECTBATCH_MAX_FILE_BYTES, default 2 GiB)."""

    def make(max_file_bytes: int | None = None, **transfer: object) -> tuple[Services, Engine, str, MailUser]:
        box = server.add_user()
        settings = replace(services.settings, inbound_mailbox=box.address, smtp=smtp_inbox[1])
        if max_file_bytes is not None:
            settings = replace(settings, max_file_bytes=max_file_bytes)
        svc = Services(settings)
        draft = Connection("Vendor A", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                           pattern="calls_*.csv", transfer=ImapSpec(**transfer))  # type: ignore[arg-type]  # fmt: skip
        svc.create_connection(draft)
        engine = Engine(svc, MailboxSettings(server.host, server.port, box.username, box.password, "plain"))
        return svc, engine, svc.inbound_address(svc.connection("Vendor A")), box

    return make


def test_a_mail_whose_attachments_match_nothing_is_recorded_once_and_answered(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
) -> None:
    svc, engine, address, box = mailbox_setup()
    server.append(box, partner_mail(address, ("notes\x1b[31m.txt", b"not a calls file"), subject="march"))

    assert engine.poll_mailbox() == []  # no file, so no run ...
    assert svc.runs("Vendor A") == []
    [event] = svc.connection_events("Vendor A")  # ... but a line in the connection's history
    assert event.kind == "mail_unmatched" and event.answered and event.count == 1
    assert "reports@vendor.example" in event.message and "calls_*.csv" in event.message

    inbox, _smtp = smtp_inbox
    [(envelope_sender, answer)] = inbox.envelopes
    assert envelope_sender == "<>"  # a bounce of the answer never comes back to us
    assert answer["To"] == "reports@vendor.example" and answer["Auto-Submitted"] == "auto-replied"
    body = answer.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "calls_*.csv" in text and "notes[31m.txt" in text and "\x1b" not in text  # control bytes dropped

    assert engine.poll_mailbox() == []  # marked processed: not recorded or answered again
    assert len(svc.connection_events("Vendor A")) == 1 and len(inbox.envelopes) == 1


def test_a_mail_without_attachment_is_recorded_and_answered(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
) -> None:
    svc, engine, address, box = mailbox_setup()
    server.append(box, partner_mail(address))

    assert engine.poll_mailbox() == []
    [event] = svc.connection_events("Vendor A")
    assert "no attachment" in event.message and event.answered
    [(_sender, answer)] = smtp_inbox[0].envelopes
    body = answer.get_body(("plain",))
    assert body is not None and "no attachment" in body.get_content()


def test_a_compressed_attachment_matches_by_its_inner_name(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
) -> None:
    svc, engine, address, box = mailbox_setup()
    zip_1 = zipped("calls_1.csv", call_csv(3, prefix="z"))
    server.append(box, partner_mail(address, ("calls_1.csv.zip", zip_1)))
    server.append(box, partner_mail(address, ("march.zip", zipped("calls_2.csv", call_csv(2, prefix="m")))))
    server.append(box, partner_mail(address, ("calls_3.csv.gz", gzip.compress(call_csv(4, prefix="g")))))

    runs = engine.poll_mailbox()

    assert [(r.status, r.files_loaded) for r in runs] == [(RunStatus.COMPLETED, 3)]
    assert svc.count_actions("Vendor A") == 9
    assert svc.connection_events("Vendor A") == [] and smtp_inbox[0].envelopes == []


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("reports@vendor.example", {"Auto-Submitted": "auto-replied"}),
        ("reports@vendor.example", {"Precedence": "bulk"}),
        ("reports@vendor.example", {"List-Id": "<reports.vendor.example>"}),
        ("MAILER-DAEMON@vendor.example", {}),
        ("reports@vendor.example", {"Return-Path": "<>"}),
    ],
)
def test_auto_generated_mail_is_recorded_but_never_answered(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
    sender: str,
    headers: dict[str, str],
) -> None:
    svc, engine, address, box = mailbox_setup()
    server.append(box, partner_mail(address, ("notes.txt", b"x"), sender=sender, headers=headers))

    engine.poll_mailbox()

    [event] = svc.connection_events("Vendor A")
    assert not event.answered and "not answered: auto-generated" in event.message
    assert smtp_inbox[0].envelopes == []


def test_answers_are_rate_limited_per_sender(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
) -> None:
    svc, engine, address, box = mailbox_setup()
    for n in range(5):
        server.append(box, partner_mail(address, (f"notes{n}.txt", b"x")))

    engine.poll_mailbox()

    events = svc.connection_events("Vendor A")
    assert len(events) == 5  # every mail is in the history ...
    assert sum(e.answered for e in events) == 3 == len(smtp_inbox[0].envelopes)  # ... 3 answers a day
    assert sum("answers already sent" in e.message for e in events) == 2


def test_dry_run_reports_do_not_use_up_the_answers_to_mails_that_brought_nothing(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
) -> None:
    """Found by an e-mail audit: three dry runs in a day left the partner's next mail, which
    brought no file, unanswered ("3 answers already sent"): one budget for both kinds."""
    import datetime as dt

    from connectbatch.pipeline import dryrun
    from connectbatch.store import events as event_store

    svc, engine, address, box = mailbox_setup()
    connection = svc.connection("Vendor A")
    with svc.db.transaction() as con:
        for n in range(3):
            now = dt.datetime.now(dt.UTC)
            event = event_store.record(con, connection.id, dryrun.EVENT_KIND, f"dry run {n}", now,
                                       sender="reports@vendor.example")  # fmt: skip
            assert event is not None
            event_store.mark_answered(con, event.id)
    server.append(box, partner_mail(address, ("notes.txt", b"x")))

    engine.poll_mailbox()

    [event] = [e for e in svc.connection_events("Vendor A") if e.kind == "mail_unmatched"]
    assert event.answered and len(smtp_inbox[0].envelopes) == 1


def test_a_sender_outside_the_allowed_senders_is_never_answered(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
) -> None:
    svc, engine, address, box = mailbox_setup(allowed_senders=("@vendor.example",))
    server.append(box, partner_mail(address, ("notes.txt", b"x"), sender="someone@spoofed.example"))

    engine.poll_mailbox()

    assert smtp_inbox[0].envelopes == []
    assert svc.connection_events("Vendor A") == []


# --- a mail too large to download (CONNECTBATCH_MAX_FILE_BYTES) --------------------------------

from dovecot import imap_bytes_read  # noqa: E402

from connectbatch.transfer.pull.imap.size import largest_message  # noqa: E402

SMALL_LIMIT = 4096  # files of up to 4 KB: a mail of a few hundred KB is "huge"


def huge_csv() -> bytes:
    return b"CallSessionId\r\n" + b"".join(b"session-%06d\r\n" % i for i in range(25_000))


def test_a_mail_too_large_to_download_is_recorded_once_answered_and_never_downloaded(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
) -> None:
    svc, engine, address, box = mailbox_setup(max_file_bytes=SMALL_LIMIT)
    huge = partner_mail(address, ("calls_all.csv", huge_csv()), subject="march\x1b[31m, all of it")
    assert len(huge) > 2 * largest_message(SMALL_LIMIT)
    server.append(box, huge)
    server.append(box, partner_mail(address, ("calls_0301.csv", call_csv(3, prefix="small"))))

    with imap_bytes_read() as first_read:
        runs = engine.poll_mailbox()

    assert [(r.status, r.files_loaded, r.rows_accepted) for r in runs] == [(RunStatus.COMPLETED, 1, 3)]
    assert first_read.total < len(huge) // 4  # the small mail, headers and sizes: not the huge one
    [event] = svc.connection_events("Vendor A")
    assert event.kind == "mail_too_large" and event.answered and event.count == 1
    assert "reports@vendor.example" in event.message and "march" in event.message
    assert "\x1b" not in event.message and "session-" not in event.message  # clean; never the body
    # the size is what the server told; Dovecot stores the message with CRLF line ends
    size = int(event.message.split("the message is ")[1].split(" bytes")[0].replace(",", ""))
    assert size >= len(huge) and f"{largest_message(SMALL_LIMIT):,} bytes" in event.message

    [(envelope_sender, answer)] = smtp_inbox[0].envelopes
    assert envelope_sender == "<>" and answer["To"] == "reports@vendor.example"
    assert "too large" in answer["Subject"] and answer["Auto-Submitted"] == "auto-replied"
    body = answer.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert f"{size:,} bytes" in text and f"{SMALL_LIMIT:,} bytes" in text and "\x1b" not in text

    with imap_bytes_read() as second_read:
        assert engine.poll_mailbox() == []  # marked processed: not screened into a new line

    assert second_read.total < len(huge) // 4
    assert len(svc.connection_events("Vendor A")) == 1 and len(smtp_inbox[0].envelopes) == 1
    assert len(server.uids(box)) == 2 and server.uids(box, criteria="SEEN") == []  # left there, unread


def test_a_dry_run_mail_too_large_to_download_is_not_downloaded(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
) -> None:
    svc, engine, _address, box = mailbox_setup(max_file_bytes=SMALL_LIMIT)
    huge = partner_mail(svc.dryrun_address(svc.connection("Vendor A")), ("calls_all.csv", huge_csv()))
    server.append(box, huge)

    with imap_bytes_read() as read:
        assert engine.poll_mailbox() == []
        assert engine.poll_mailbox() == []

    assert read.total < len(huge) // 4
    [event] = svc.connection_events("Vendor A")
    assert event.kind == "mail_too_large" and event.answered
    assert len(smtp_inbox[0].envelopes) == 1


def test_an_answer_waits_in_the_outbox_while_the_smtp_server_is_down(
    server: DovecotServer, services: Services
) -> None:
    """An automatic answer used to be sent once, at once: a relay that was down lost it for
    good. It is queued like the results now (empty envelope sender kept) and goes out once
    the relay is back."""
    import datetime as dt

    from connectbatch.pipeline import outbox
    from connectbatch.store import outbox as outbox_store

    port = free_port()  # nothing listens there yet: the relay is down
    box = server.add_user()
    smtp = SmtpSettings(host="127.0.0.1", port=port, sender="results@connectbatch.test")
    svc = Services(replace(services.settings, inbound_mailbox=box.address, smtp=smtp))
    draft = Connection("Vendor A", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                       pattern="calls_*.csv")  # fmt: skip
    svc.create_connection(draft)
    engine = Engine(svc, MailboxSettings(server.host, server.port, box.username, box.password, "plain"))
    server.append(box, partner_mail(svc.inbound_address(svc.connection("Vendor A")), ("notes.txt", b"x")))

    assert engine.poll_mailbox() == []
    [event] = svc.connection_events("Vendor A")
    assert event.kind == "mail_unmatched" and event.answered  # on its way: queued
    with svc.db.connect() as con:
        [queued] = outbox_store.due(con, svc.clock() + dt.timedelta(days=1), svc.clock(), 10)
    assert (queued.kind, queued.envelope_from, queued.attempts) == ("answer", "<>", 1)
    assert queued.recipient == "reports@vendor.example" and queued.last_error

    with running_smtp(port=port) as (inbox, _):
        later = svc.clock() + dt.timedelta(seconds=outbox.BACKOFF[0] + 1)
        svc.outbox.clock = lambda: later
        assert svc.outbox.send_due() == 1
        [(envelope_sender, answer)] = inbox.envelopes
    assert envelope_sender == "<>" and answer["Auto-Submitted"] == "auto-replied"
    assert "nothing taken" in answer["Subject"]


def bounce(to: str, returned: bytes) -> bytes:
    """A Postfix-style delivery status notification returning `returned` (RFC 3464)."""
    from email.mime.message import MIMEMessage
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.partner.example (Mail Delivery System)"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Auto-Submitted"] = "auto-replied"
    report["Message-ID"] = _email.utils.make_msgid(domain="mx.partner.example")
    report.attach(MIMEText("I'm sorry to have to inform you that your message could not be delivered."))
    report.attach(MIMEText("Reporting-MTA: dns; mx.partner.example\nAction: failed\n"))  # (its status part)
    report.attach(MIMEMessage(_email.message_from_bytes(returned)))
    return report.as_bytes()


@pytest.mark.parametrize("sender_is_daemon", [True, False])
def test_a_bounce_is_never_taken_as_a_partners_file(
    server: DovecotServer,
    mailbox_setup: Callable[..., tuple[Services, Engine, str, MailUser]],
    smtp_inbox: tuple[Inbox, SmtpSettings],
    sender_is_daemon: bool,
) -> None:
    """Found by an e-mail audit: the bounce of one of our results mails, which carries the
    results file back, was taken as the partner's file (run Failed, connection Failed, a new
    results mail out), and that mail's bounce came back the same way: a mail loop. A report
    is recorded in the history, never loaded and never answered."""
    svc, engine, address, box = mailbox_setup()
    ours = partner_mail("ops@partner.example", ("calls_run1.csv", call_csv(2, prefix="ours")), sender=address)
    returned = bounce(address, ours)
    if not sender_is_daemon:  # a report is one by its type, whoever sends it
        returned = returned.replace(b"MAILER-DAEMON@mx.partner.example", b"postbox@mx.partner.example", 1)

    server.append(box, returned)

    assert engine.poll_mailbox() == []
    assert svc.runs("Vendor A") == []
    [event] = svc.connection_events("Vendor A")
    assert "a delivery report (a bounce or a read receipt): nothing taken from it" in event.message
    assert not event.answered and smtp_inbox[0].envelopes == []
