"""Results e-mails go through the outbox (pipeline/outbox.py), against a real SMTP server
(aiosmtpd) on 127.0.0.1: a server that is down, says "try later", refuses for good, or never
answers neither loses the partner's results nor holds the ingest."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from helpers import call_csv
from helpers.clock import Clock
from helpers.ports import free_port
from peers import TrickleProxy
from smtp_server import HOST, Inbox, running_smtp

from connectbatch.engine import Engine
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.pipeline import mailer, outbox
from connectbatch.services import Services
from connectbatch.settings import Settings, SmtpSettings
from connectbatch.store import events as event_store
from connectbatch.store import outbox as outbox_store

RETURN = "ops@acme.example"


class Moody(Inbox):
    """An SMTP server that answers the message's DATA with `answer` (250 = take it)."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = "250 OK"
        self.offered = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.offered += 1
        if not self.answer.startswith("250"):
            return self.answer
        return str(await super().handle_DATA(server, session, envelope))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _services(settings: Settings, port: int, clock: Clock, timeout: float = 10.0) -> Services:
    smtp = SmtpSettings(host=HOST, port=port, sender="results@connectbatch.test", timeout=timeout)
    services = Services(replace(settings, smtp=smtp), clock=clock)
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, return_email=RETURN
    )
    services.create_connection(draft)
    return services


def _queued(services: Services, run_id: int) -> outbox_store.Queued:
    with services.db.connect() as con:
        [queued] = outbox_store.of_run(con, run_id)
    return queued


def _ingest(services: Services, prefix: str) -> int:
    data = call_csv(3, prefix=prefix)
    run = services.ingest_bytes("Acme", f"{prefix}.csv", data)
    assert run.files_loaded == 1, run.reason
    return run.id


def test_results_wait_for_an_smtp_server_that_was_down(settings: Settings, clock: Clock) -> None:
    port = free_port()  # nothing listens yet: the relay is down
    services = _services(settings, port, clock)
    run_id = _ingest(services, "down")
    queued = _queued(services, run_id)
    assert (queued.state, queued.attempts) == ("pending", 1)
    assert queued.last_error and "refused" in queued.last_error.lower()
    from app_pages._run_history import mail_line

    assert mail_line(queued).startswith(f"Results e-mail to {RETURN} waiting: try 1 failed (")
    with running_smtp(port=port) as (inbox, _):
        assert services.outbox.send_due() == 0  # not before its time
        clock.now += dt.timedelta(seconds=outbox.BACKOFF[0])
        assert services.outbox.send_due() == 1
        [message] = inbox.messages
    assert message["To"] == RETURN and f"run {run_id}" in message["Subject"]
    assert any(p.get_filename().endswith(".results.csv") for p in message.iter_attachments())
    assert _queued(services, run_id).state == "sent"
    assert not list((settings.home / "outbox").iterdir())  # the spooled copy is gone once sent


def test_a_temporary_refusal_is_tried_again_and_the_message_goes_once(
    settings: Settings, clock: Clock
) -> None:
    moody = Moody()
    moody.answer = "451 4.7.1 Greylisted, try again later"
    with running_smtp(handler=moody) as (_, smtp):
        services = _services(settings, smtp.port, clock)
        run_id = _ingest(services, "grey")
        assert _queued(services, run_id).last_error == "451 4.7.1 Greylisted, try again later"
        moody.answer = "250 OK"
        for _ in range(3):  # however often the sender passes, one message arrives
            clock.now += dt.timedelta(hours=1)
            services.outbox.send_due()
    assert len(moody.messages) == 1 and moody.offered == 2
    assert _queued(services, run_id).state == "sent"
    from app_pages._run_history import mail_line

    [mail] = services.results_mail(run_id)
    assert mail_line(mail).startswith(f"Results e-mailed to {RETURN} 20")


def test_a_permanent_refusal_is_given_up_at_once_and_said_in_the_history(
    settings: Settings, clock: Clock
) -> None:
    moody = Moody()
    moody.answer = "550 5.1.1 <ops@acme.example>: mailbox unknown"
    with running_smtp(handler=moody) as (_, smtp):
        services = _services(settings, smtp.port, clock)
        run_id = _ingest(services, "bounce")
        clock.now += dt.timedelta(days=1)
        services.outbox.send_due()
    queued = _queued(services, run_id)
    assert (queued.state, moody.offered) == ("failed", 1)
    with services.db.connect() as con:
        [event] = [
            e for e in event_store.of_connection(con, queued.connection_id or 0) if e.kind == "mail_failed"
        ]
    assert event.message == (
        f"The results of run {run_id} could not be sent to {RETURN} after 1 try: 550 5.1.1 <{RETURN}>: "
        "mailbox unknown. The results files stay in the outbound folder."
    )
    assert event.run_id == run_id
    from app_pages._run_history import mail_line  # what the run's History says

    [mail] = services.results_mail(run_id)
    assert mail_line(mail) == (
        f"Results e-mail to {RETURN} not delivered after 1 try: 550 5.1.1 <{RETURN}>: mailbox unknown."
    )


def _umlaut_run(services: Services, prefix: str) -> int:
    """A run of a connection whose return address is not ASCII ("büro@müller.example")."""
    draft = Connection(
        "Müller", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        return_email="büro@müller.example",
    )  # fmt: skip
    services.create_connection(draft)
    return services.ingest_bytes("Müller", "calls.csv", call_csv(2, prefix=prefix)).id


def test_an_address_plain_smtp_cannot_carry_is_given_up_and_the_others_still_go(
    settings: Settings, clock: Clock
) -> None:
    """A non-ASCII return address (or a partner's From answered) made smtplib raise
    UnicodeEncodeError: the pass stopped there, the message stayed claimed, was taken again
    every CLAIM_SECONDS for ever and never said in the history. A server without SMTPUTF8
    still cannot take it: given up, saying why."""
    port = free_port()  # down while both are queued, so one pass meets both
    services = _services(settings, port, clock)
    umlaut = _umlaut_run(services, "umlaut")
    plain = _ingest(services, "plain")
    with running_smtp(port=port) as (inbox, _):
        clock.now += dt.timedelta(seconds=outbox.BACKOFF[0])
        assert services.outbox.send_due() == 1
        assert [m["To"] for m in inbox.messages] == [RETURN]
    assert _queued(services, plain).state == "sent"
    given_up = _queued(services, umlaut)
    assert given_up.state == "failed" and "not ASCII" in (given_up.last_error or "")
    with services.db.connect() as con:
        [event] = [
            e for e in event_store.of_connection(con, given_up.connection_id or 0) if e.kind == "mail_failed"
        ]
    assert "büro@müller.example" in event.message and "SMTPUTF8" in event.message
    clock.now += dt.timedelta(seconds=outbox.CLAIM_SECONDS * 2)
    assert services.outbox.send_due() == 0 and _queued(services, umlaut).attempts == given_up.attempts


class RudeBye(Inbox):
    """Takes the message (250 to DATA), then answers QUIT with `bye` instead of 221."""

    def __init__(self, bye: str) -> None:
        super().__init__()
        self.bye = bye

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        return self.bye


@pytest.mark.parametrize("bye", ["421 4.3.2 shutting down", "554 5.3.0 bye"])
def test_a_message_the_server_took_goes_once_whatever_it_answers_to_quit(
    settings: Settings, clock: Clock, bye: str
) -> None:
    """The server had the message (250 to DATA); a QUIT answered otherwise than 221 raised
    out of the session and the outbox took it for a failed send: the partner got the message
    again at every retry (421), or the history said it was not delivered (5xx)."""
    server = RudeBye(bye)
    with running_smtp(handler=server) as (_, smtp):
        services = _services(settings, smtp.port, clock)
        run_id = _ingest(services, "bye")
        for _ in range(3):
            clock.now += dt.timedelta(hours=1)
            services.outbox.send_due()
    assert len(server.messages) == 1
    queued = _queued(services, run_id)
    assert (queued.state, queued.attempts) == ("sent", 1)


def test_a_message_failing_for_days_is_given_up(settings: Settings, clock: Clock) -> None:
    services = _services(settings, free_port(), clock)  # never up
    run_id = _ingest(services, "gone")
    for _ in range(60):
        clock.now += dt.timedelta(hours=1)
        services.outbox.send_due()
    queued = _queued(services, run_id)
    assert queued.state == "failed" and queued.attempts == 1 + 48  # hourly until two days passed
    assert services.outbox.send_due() == 0


def test_a_sender_that_died_mid_send_leaves_a_claim_another_takes(settings: Settings, clock: Clock) -> None:
    with running_smtp() as (inbox, smtp):
        services = _services(settings, smtp.port, clock)
        services.outbox.smtp = None  # the first sender "dies" before it sends
        run_id = _ingest(services, "crash")
        with services.db.transaction() as con:
            assert outbox_store.claim(con, _queued(services, run_id), clock())
        services.outbox.smtp = services.smtp
        assert services.outbox.send_due() == 0  # a fresh claim is another sender's
        clock.now += dt.timedelta(seconds=outbox.CLAIM_SECONDS + 1)
        assert services.outbox.send_due() == 1
    assert len(inbox.messages) == 1


@pytest.fixture
def silent_smtp() -> Iterator[int]:
    """A server that takes the TCP connection and never says a word (no SMTP banner)."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_an_smtp_server_that_never_answers_does_not_hold_the_ingest(
    settings: Settings, clock: Clock, silent_smtp: int
) -> None:
    """In a long-running process the outbox sends in the background: the ingest returns with
    its results queued while the sender still waits for the server."""
    services = _services(settings, silent_smtp, clock, timeout=3.0)
    engine = Engine(services)
    engine.start(servers=False)
    try:
        run_id = _ingest(services, "stall")
        queued = _queued(services, run_id)
        assert queued.state in ("pending", "sending") and queued.last_error is None
    finally:
        engine.stop()


@pytest.mark.parametrize(
    ("code", "gives_up"), [(550, True), (552, True), (554, True), (451, False), (421, False), (535, False)]
)
def test_which_refusals_are_permanent(code: int, gives_up: bool) -> None:
    import smtplib

    exc: Exception = (
        smtplib.SMTPAuthenticationError(code, b"no") if code == 535 else smtplib.SMTPDataError(code, b"no")
    )
    assert outbox.permanent(exc) is gives_up
    assert outbox.permanent(smtplib.SMTPRecipientsRefused({RETURN: (code, b"no")})) is (code >= 500)
    assert not outbox.permanent(ConnectionRefusedError())


def test_results_too_large_for_mail_go_compressed_or_are_named(settings: Settings, clock: Clock) -> None:
    """A relay refuses a message over its size (552) and the partner got nothing: over the
    limit the results CSV goes gzip-compressed, and one still too large is named, not sent."""
    import gzip

    with running_smtp() as (inbox, smtp):
        services = _services(settings, smtp.port, clock)
        services.outbox.smtp = services.smtp = replace(smtp, max_bytes=4096)
        data = call_csv(300, prefix="big")
        run = services.ingest_bytes("Acme", "big.csv", data)
        [message] = inbox.messages
        results = settings.outbound / str(run.connection_id) / f"run{run.id}-file1-big.csv.results.csv"
        assert results.stat().st_size > 4096
        parts = {p.get_filename(): p for p in message.iter_attachments()}
        packed = parts[results.name + ".gz"]
        assert gzip.decompress(packed.get_content()) == results.read_bytes()
        assert f"run{run.id}-file1-big.csv.summary.json" in parts
        body = message.get_body(("plain",))
        assert body is not None and "compressed with gzip" in body.get_content()

        summary = results.with_name(f"run{run.id}-file1-big.csv.summary.json").stat().st_size
        services.outbox.smtp = services.smtp = replace(smtp, max_bytes=summary + 200)
        inbox.clear()
        run = services.ingest_bytes("Acme", "big2.csv", call_csv(200, prefix="bigger"))
        [message] = inbox.messages
        names = [p.get_filename() for p in message.iter_attachments()]
        assert names == [f"run{run.id}-file2-big2.csv.summary.json"]  # the ledger's second file
        body = message.get_body(("plain",))
        assert body is not None and "big2.csv.results.csv.gz" in body.get_content()
        assert "too large for e-mail" in body.get_content()


def test_spooled_files_no_message_names_are_swept(settings: Settings, clock: Clock) -> None:
    """A process killed between spooling a message and queueing it leaves a file behind."""
    import os

    services = _services(settings, free_port(), clock)
    run_id = _ingest(services, "kept")  # queued, pending: its file stays
    folder = settings.home / "outbox"
    orphan, partial, fresh = folder / ("0" * 32 + ".eml"), folder / ("1" * 32 + ".eml.tmp"), folder / "f.eml"
    for path in (orphan, partial, fresh):
        path.write_bytes(b"Subject: x\r\n\r\n")
    old = (clock() - dt.timedelta(hours=2)).timestamp()
    for path in (orphan, partial, folder / _queued(services, run_id).path):
        os.utime(path, (old, old))
    assert sorted(p.name for p in services.outbox.sweep()) == sorted([orphan.name, partial.name])
    assert sorted(p.name for p in folder.iterdir()) == sorted([fresh.name, _queued(services, run_id).path])


def test_a_relay_that_trickles_for_ever_holds_a_message_no_longer_than_the_send_deadline(
    settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SMTP relay that answers a byte a second (a real server behind a trickling relay)
    never lets a read time out: one message held the outbox's sender (and a one-shot
    command's ingest, which tries its mail at once) for ever, every other partner's mail
    behind it, and past CLAIM_SECONDS another process's outbox would claim it too and send it
    twice. A message's session now ends by mailer.SEND_SECONDS: it waits, said why, and goes
    once when the relay answers again."""
    monkeypatch.setattr(mailer, "SEND_SECONDS", 3.0)
    with running_smtp() as (inbox, smtp):
        proxy = TrickleProxy((HOST, smtp.port), fast=0, chunk=1, every=1.0)
        try:
            services = _services(settings, proxy.port, clock)
            ingested: list[int] = []
            thread = threading.Thread(target=lambda: ingested.append(_ingest(services, "slow")), daemon=True)
            thread.start()
            thread.join(120)
            assert not thread.is_alive(), "the ingest still waited on the relay after 120 s"
            queued = _queued(services, ingested[0])
            assert (queued.state, queued.attempts) == ("pending", 1)
            assert "3 s" in (queued.last_error or "") and "SMTP" in (queued.last_error or "")

            proxy.throttled = False
            clock.now += dt.timedelta(seconds=outbox.BACKOFF[0])
            assert services.outbox.send_due() == 1
            assert _queued(services, ingested[0]).state == "sent" and len(inbox.messages) == 1
        finally:
            proxy.close()


def test_a_non_ascii_return_address_is_sent_with_smtputf8_when_the_server_offers_it(
    settings: Settings, clock: Clock
) -> None:
    """It was given up whatever the server offered ("not ASCII"), and its To header was
    spooled as RFC 2047 words ("=?utf-8?q?b=C3=BCro?=@..."), which name no mailbox."""
    port = free_port()
    services = _services(settings, port, clock)
    run_id = _umlaut_run(services, "utf8")
    with running_smtp(port=port, smtputf8=True) as (inbox, _):
        clock.now += dt.timedelta(seconds=outbox.BACKOFF[0])
        assert services.outbox.send_due() == 1
    [message] = inbox.messages
    assert message["To"] == "büro@müller.example"
    assert _queued(services, run_id).state == "sent"
