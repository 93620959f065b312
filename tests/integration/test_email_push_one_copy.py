"""E-mail push when the mail server keeps ONE copy of a mail addressed to several of our
plus-addresses (no Delivered-To per copy, or one rewritten to the mailbox's own address):
every addressed connection takes its own attachments from that copy, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage

import duckdb
import pytest
from dovecot import DovecotServer, MailUser, imap_bytes_read, running_dovecot
from helpers import call_csv

from connectbatch.engine import Engine, MailboxSettings
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import Services
from connectbatch.store.mail_taken import TakenCopies
from connectbatch.transfer.pull import collect


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    with running_dovecot() as running:
        yield running


def _setup(
    server: DovecotServer, services: Services, patterns: dict[str, str]
) -> tuple[Services, Engine, dict[str, str], MailUser]:
    box = server.add_user()
    services = Services(replace(services.settings, inbound_mailbox=box.address))
    for name, pattern in patterns.items():
        services.create_connection(
            Connection(
                name, "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH, pattern=pattern
            )
        )
    addresses = {n: services.inbound_address(services.connection(n)) for n in patterns}
    engine = Engine(services, MailboxSettings(server.host, server.port, box.username, box.password, "plain"))
    return services, engine, addresses, box


def _mail(to: str, cc: str, *attachments: tuple[str, bytes], delivered_to: str | None = None) -> bytes:
    message = EmailMessage()
    if delivered_to:
        message["Delivered-To"] = delivered_to
    message["From"] = "reports@vendor.example"
    message["To"] = to
    message["Cc"] = cc
    message["Subject"] = "calls and conversions"
    message["Message-ID"] = "<one-copy@vendor.example>"
    message.set_content("attached")
    for name, data in attachments:
        message.add_attachment(data, maintype="text", subtype="csv", filename=name)
    return message.as_bytes()


@pytest.mark.parametrize("delivered_to", [None, "base"])
def test_one_copy_addressed_to_two_connections_goes_to_each(
    server: DovecotServer, services: Services, delivered_to: str | None
) -> None:
    """Vendor A, read first, took the copy and marked it processed: Vendor B's file was never
    taken, and nothing said so."""
    services, engine, addresses, user = _setup(
        server, services, {"Vendor A": "calls_*.csv", "Vendor B": "conv_*.csv"}
    )
    box_address = services.settings.inbound_mailbox
    raw = _mail(
        addresses["Vendor A"], addresses["Vendor B"],
        ("calls_1.csv", call_csv(2, prefix="to-a")), ("conv_1.csv", call_csv(3, prefix="to-b")),
        delivered_to=box_address if delivered_to == "base" else None,
    )  # fmt: skip
    server.append(user, raw)

    runs = engine.poll_mailbox()

    by_connection = {r.connection_id: (r.files_seen, r.rows_accepted) for r in runs}
    assert by_connection == {
        services.connection("Vendor A").id: (1, 2),
        services.connection("Vendor B").id: (1, 3),
    }
    assert engine.poll_mailbox() == []  # redelivery: nothing doubled
    assert services.count_actions("Vendor A") == 2
    assert services.count_actions("Vendor B") == 3


def test_each_addressed_connection_takes_the_same_attachment_once_and_then_it_is_marked(
    server: DovecotServer, services: Services
) -> None:
    """Both connections want the same file: each takes it once; the copy is marked processed
    when the last addressed connection has taken it, and later polls download nothing."""
    services, engine, addresses, user = _setup(
        server, services, {"Vendor A": "calls_*.csv", "Vendor B": "calls_*.csv", "Vendor C": "calls_*.csv"}
    )
    uid = server.append(
        user, _mail(addresses["Vendor A"], addresses["Vendor B"], ("calls_7.csv", call_csv(4, prefix="both")))
    )

    runs = engine.poll_mailbox()

    assert sorted((r.connection_id, r.rows_accepted) for r in runs) == sorted(
        [(services.connection("Vendor A").id, 4), (services.connection("Vendor B").id, 4)]
    )
    assert services.runs("Vendor C") == []  # not addressed
    assert "$ConnectBatchProcessed" in server.flags(user, uid)
    with services.db.connect() as con:  # only copies still waited on are kept
        assert con.execute("SELECT count(*) FROM mail_taken").fetchone() == (0,)
    assert engine.poll_mailbox() == []


def test_a_connection_that_took_its_part_does_not_take_it_again_while_another_waits(
    server: DovecotServer, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A took its file; B has not polled yet (its poll failed, or it came later): the copy
    stays unmarked for B, and A's next polls neither take it again nor download it."""
    services, engine, addresses, user = _setup(
        server, services, {"Vendor A": "calls_*.csv", "Vendor B": "conv_*.csv"}
    )
    address_b = addresses["Vendor B"]
    raw = _mail(addresses["Vendor A"], address_b, ("calls_1.csv", call_csv(2, prefix="a")),
                ("conv_1.csv", call_csv(3, prefix="b")))  # fmt: skip
    uid = server.append(user, raw)
    b = services.connection("Vendor B")
    pull = collect.pull
    with monkeypatch.context() as patched:  # B's polls fail quietly (its server side was down)
        patched.setattr(
            collect,
            "pull",
            lambda ingestor, box, c, *a, **k: None if c.id == b.id else pull(ingestor, box, c, *a, **k),
        )
        assert [r.rows_accepted for r in engine.poll_mailbox()] == [2]
        assert "$ConnectBatchProcessed" not in server.flags(user, uid)  # B has not taken its file
        with imap_bytes_read() as read:
            assert engine.poll_mailbox() == []
        assert read.largest < len(raw) // 2  # not downloaded again
    assert services.count_actions("Vendor A") == 2
    runs = engine.poll_mailbox()
    assert [(r.connection_id, r.rows_accepted) for r in runs] == [(services.connection("Vendor B").id, 3)]
    assert "$ConnectBatchProcessed" in server.flags(user, uid)


def test_records_that_cannot_be_written_leave_the_copy_for_a_later_poll(
    server: DovecotServer, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refusing the record after the files went in must not fail the run that
    loaded them: the copy stays unmarked, and the next poll settles it without doubling."""
    services, engine, addresses, user = _setup(
        server, services, {"Vendor A": "calls_*.csv", "Vendor B": "conv_*.csv"}
    )
    raw = _mail(addresses["Vendor A"], addresses["Vendor B"], ("calls_1.csv", call_csv(2, prefix="a")),
                ("conv_1.csv", call_csv(3, prefix="b")))  # fmt: skip
    uid = server.append(user, raw)
    with monkeypatch.context() as patched:

        def refuse(*_: object) -> bool:
            raise duckdb.IOException("disk full")

        patched.setattr(TakenCopies, "take", refuse)
        patched.setattr(TakenCopies, "taken", refuse)
        runs = engine.poll_mailbox()
    assert sorted((r.status, r.rows_accepted) for r in runs) == [
        (RunStatus.COMPLETED, 2), (RunStatus.COMPLETED, 3)
    ]  # fmt: skip
    assert "$ConnectBatchProcessed" not in server.flags(user, uid)

    assert engine.poll_mailbox() == []  # settled by each connection's ledger, nothing doubled
    assert "$ConnectBatchProcessed" in server.flags(user, uid)
    assert (services.count_actions("Vendor A"), services.count_actions("Vendor B")) == (2, 3)
