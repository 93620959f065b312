"""E-mail push end to end: a partner mails a file to its connection's own address
(inbox+<connection>@...), the engine reads the shared mailbox on a real Dovecot and ingests it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage

import pytest
from dovecot import DovecotServer, MailUser, running_dovecot
from helpers import call_csv

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
    assert address_a.startswith(box.address.split("@")[0] + "+vendor-a@")
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
