"""A results or status file attached to our e-mail reads as the UTF-8 it is.

Every CSV we write is UTF-8, but it was attached as `text/csv` without a charset, which MIME
reads as US-ASCII (RFC 2046): a mail client showing or converting the attachment, and
Python's own `get_content()`, turned a partner's `São Paulo` key into `S��o Paulo`.
Against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from helpers import CALL_COLUMNS, call_rows, to_csv
from smtp_server import Inbox, running_smtp

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings

KEY = "São-Paulo-0001"


@pytest.fixture
def mailing(settings: Settings) -> Iterator[tuple[Inbox, Services]]:
    with running_smtp("results@connectbatch.test") as (inbox, smtp):
        services = Services(replace(settings, smtp=smtp))
        draft = Connection(
            "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
            return_email="ops@acme.example", sync_back=["email"],
        )  # fmt: skip
        services.create_connection(draft)
        rows = call_rows(2)
        rows[0]["CallSessionId"] = KEY
        run = services.ingest_bytes("Acme", "calls.csv", to_csv(rows, CALL_COLUMNS))
        assert run.files_loaded == 1, run.reason
        services.outbox.send_due()
        yield inbox, services


def _csv_attachments(inbox: Inbox, subject: str) -> list[str]:
    found = []
    for message in inbox.messages:
        if subject not in str(message["Subject"]):
            continue
        for part in message.iter_attachments():
            if (part.get_filename() or "").endswith(".csv"):
                assert part.get_content_charset() == "utf-8", part["Content-Type"]
                content = part.get_content()
                found.append(content if isinstance(content, str) else content.decode("ascii"))
    return found


def test_the_results_file_attached_reads_as_utf8(mailing: tuple[Inbox, Services]) -> None:
    inbox, _ = mailing
    [results] = _csv_attachments(inbox, ": run ")
    assert KEY in results


def test_the_status_file_attached_reads_as_utf8(mailing: tuple[Inbox, Services]) -> None:
    inbox, services = mailing
    services.sync_back_now("Acme")
    services.outbox.send_due()
    [status] = _csv_attachments(inbox, "status changes")
    assert KEY in status
