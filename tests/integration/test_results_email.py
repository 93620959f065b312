"""Returned results: a real SMTP server (aiosmtpd) on 127.0.0.1 receives them after a run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from helpers import call_csv
from smtp_server import Inbox, running_smtp, use_smtp

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings, SmtpSettings


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with running_smtp() as (handler, smtp):
        use_smtp(monkeypatch, smtp)
        yield handler


@pytest.fixture
def settings(inbox: Inbox, settings: Settings) -> Settings:
    """The conftest's settings plus the SMTP server `inbox` put in the environment (Services
    take SMTP from their Settings, as Settings.from_env() reads it)."""
    return replace(settings, smtp=SmtpSettings.from_env())


def test_results_are_emailed_to_the_return_address_after_a_run(inbox: Inbox, settings: Settings) -> None:
    services = Services(settings)
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        return_email="ops@acme.example",
    )  # fmt: skip
    services.create_connection(draft)
    data = call_csv(40, prefix="mail", overrides={1: {"CallDuration": "abc"}})  # 2.5% rejected

    run = services.ingest_bytes("Acme", "calls.csv", data)

    [message] = inbox.messages
    assert message["To"] == "ops@acme.example"
    assert f"run {run.id}" in message["Subject"] and "Completed" in message["Subject"]
    body = message.get_body(("plain",))
    assert body is not None and "39 accepted, 1 rejected" in body.get_content()
    names = sorted(part.get_filename() or "" for part in message.iter_attachments())
    assert names == [f"run{run.id}-file1-calls.csv.results.csv", f"run{run.id}-file1-calls.csv.summary.json"]
    results = next(p for p in message.iter_attachments() if p.get_filename().endswith(".csv"))
    content = results.get_content()
    text = content if isinstance(content, str) else content.decode()
    assert "REJECTED" in text and "CallDuration" in text


def test_no_return_address_means_no_mail(inbox: Inbox, settings: Settings) -> None:
    services = Services(settings)
    services.create_connection(
        Connection("Quiet", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    services.ingest_bytes("Quiet", "calls.csv", call_csv(2, prefix="quiet"))
    assert inbox.messages == []


HOSTILE = "Acme\r\nBcc: spy@evil.example"  # kept exact, as names are (tests/security/test_names.py)


def test_a_connection_name_with_line_breaks_neither_loses_the_results_mail_nor_adds_a_header(
    inbox: Inbox, settings: Settings
) -> None:
    """The name went into the Subject as it was: the e-mail package refused it (ValueError),
    the run hook logged it and the partner's results were never sent."""
    services = Services(settings)
    draft = Connection(
        HOSTILE, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        return_email="ops@acme.example",
    )  # fmt: skip
    services.create_connection(draft)

    run = services.ingest_bytes(HOSTILE, "calls.csv", call_csv(2, prefix="crlf"))

    [(_, message)] = inbox.envelopes
    assert message["To"] == "ops@acme.example" and message["Bcc"] is None
    assert message["Subject"] == f"[ConnectBatch] Acme\\r\\nBcc: spy@evil.example: run {run.id} Completed"
