"""Mail we send a partner about an e-mail push connection names the connection's address as
its Reply-To, so a partner who answers our mail with the corrected file reaches the connection.

Before, results and automatic answers carried only our From address: a partner who pressed
Reply and attached the fixed file sent it to that address, where no connection reads, and the
file was lost (an e-mail audit). A dry run's report names the dry-run address instead: a reply
to it is tried again, not loaded. Against Dovecot (our hosted mailbox) and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from dovecot import DovecotServer, running_dovecot
from helpers import call_csv
from smtp_server import Inbox, running_smtp

from connectbatch.engine import Engine, MailboxSettings
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.pipeline import dryrun
from connectbatch.services import Services

PARTNER = "reports@vendor.example"


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    with running_dovecot() as running:
        yield running


def _mail(to: str, subject: str, attachment: tuple[str, bytes] | None, *, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = PARTNER
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content("attached" if attachment else "see above")
    if attachment is not None:
        message.add_attachment(attachment[1], maintype="text", subtype="csv", filename=attachment[0])
    return message.as_bytes()


def _sent(inbox: Inbox, services: Services) -> EmailMessage:
    services.outbox.send_due()
    (message,) = inbox.messages
    inbox.clear()
    return message


def test_a_reply_to_our_mail_with_the_fixed_file_reaches_the_connection(
    server: DovecotServer, services: Services, tmp_path: Path
) -> None:
    box = server.add_user()
    with running_smtp("results@connectbatch.test") as (inbox, smtp):
        services = Services(replace(services.settings, inbound_mailbox=box.address, smtp=smtp))
        draft = Connection(
            "Vendor Calls", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
            pattern="calls_*.csv", return_email=PARTNER,
        )  # fmt: skip
        services.create_connection(draft)
        connection = services.connection("Vendor Calls")
        address = services.inbound_address(connection)
        mailbox = MailboxSettings(server.host, server.port, box.username, box.password, "plain")
        engine = Engine(services, mailbox)

        # a mail that brings nothing: the automatic answer names the connection's address
        nothing = _mail(address, "calls", ("report.pdf", b"%PDF"), message_id="<none@vendor.example>")
        server.append(box, nothing)
        engine.poll_mailbox()
        answer = _sent(inbox, services)
        assert answer["Reply-To"] == address
        assert answer["From"] == "results@connectbatch.test"

        # a file whose every row is refused: Failed, and the results mail names the address
        bad = call_csv(2, prefix="fixed").replace(b",ANSWER,", b",ANSWERD,")
        server.append(box, _mail(address, "calls", ("calls_1.csv", bad), message_id="<bad@vendor.example>"))
        (failed,) = engine.poll_mailbox()
        assert failed.status is RunStatus.FAILED
        results = _sent(inbox, services)
        assert results["Reply-To"] == address

        # the partner presses Reply and attaches the corrected file: it is loaded
        fixed = ("calls_1.csv", call_csv(2, prefix="fixed"))
        subject = f"Re: {results['Subject']}"
        reply = _mail(str(results["Reply-To"]), subject, fixed, message_id="<fixed@x.example>")
        server.append(box, reply)
        (loaded,) = engine.poll_mailbox()
        assert (loaded.status, loaded.rows_accepted) == (RunStatus.COMPLETED, 2)
        assert _sent(inbox, services)["Reply-To"] == address

        # a dry run's report names the dry-run address: a reply to it is another dry run
        sample = tmp_path / "calls_2.csv"
        sample.write_bytes(call_csv(3, prefix="try"))
        assert dryrun.mail(services.outbox, PARTNER, services.dry_run_file("Vendor Calls", sample))
        assert _sent(inbox, services)["Reply-To"] == services.dryrun_address(connection)


def test_mail_about_a_connection_fed_otherwise_names_no_reply_to(services: Services) -> None:
    """An SFTP push partner sends files over SFTP: no address of ours takes a reply."""
    with running_smtp("results@connectbatch.test") as (inbox, smtp):
        services = Services(replace(services.settings, smtp=smtp))
        draft = Connection(
            "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, return_email=PARTNER
        )
        services.create_connection(draft)
        services.ingest_bytes("Acme", "one.csv", call_csv(2, prefix="one"))
        assert "Reply-To" not in _sent(inbox, services)
