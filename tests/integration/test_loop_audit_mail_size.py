"""A results e-mail fits the relay's limit as it goes over the wire, not as the files lie on disk.

CONNECTBATCH_SMTP_MAX_BYTES is set to what the relay takes (Postfix refuses over 10,240,000
bytes by default; the default limit is 10 MiB). Attachments travel in base64, a third larger:
a results file under the limit on disk made a message over it, the relay refused it (552, a
permanent refusal) and the partner got no results at all, the very case the gzip fallback is
for. Against a real SMTP server (aiosmtpd) that enforces its SIZE."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller
from helpers import call_csv
from helpers.ports import free_port
from smtp_server import HOST, Inbox

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings, SmtpSettings
from connectbatch.store import outbox as outbox_store

LIMIT = 50_000  # the relay's, and ours: the operator set CONNECTBATCH_SMTP_MAX_BYTES to it


@pytest.fixture
def relay() -> Iterator[tuple[Inbox, SmtpSettings]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname=HOST, port=port, data_size_limit=LIMIT)
    controller.start()
    try:
        yield inbox, SmtpSettings(host=HOST, port=port, sender="results@connectbatch.test", max_bytes=LIMIT)
    finally:
        controller.stop()


def test_results_under_the_limit_on_disk_but_over_it_in_base64_still_reach_the_partner(
    settings: Settings, relay: tuple[Inbox, SmtpSettings]
) -> None:
    inbox, smtp = relay
    services = Services(replace(settings, smtp=smtp))
    draft = Connection(
        "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
        return_email="ops@acme.example",
    )  # fmt: skip
    services.create_connection(draft)

    run = services.ingest_bytes("Acme", "calls.csv", call_csv(1000))
    services.outbox.send_due()

    files = [p for p in services.results_files("Acme") if p.name.startswith(f"run{run.id}-")]
    on_disk = sum(p.stat().st_size for p in files)
    assert LIMIT * 3 // 4 < on_disk < LIMIT  # fits on disk, not in base64
    with services.db.connect() as con:
        [queued] = outbox_store.of_run(con, run.id)
    assert queued.state == "sent", queued.last_error
    [message] = inbox.messages
    parts = {p.get_filename(): p for p in message.iter_attachments()}
    results = next(p for p in files if p.name.endswith(".results.csv"))
    assert gzip.decompress(parts[results.name + ".gz"].get_content()) == results.read_bytes()
