"""Every mail we send carries the Date (RFC 5322 requires it) and a Message-ID.

Results, status files, alerts and automatic answers went out with neither: relays that do not
add them pass the message on as it is, and Gmail refuses mail without a valid Message-ID
(550 5.7.1), so a partner on it got no results at all. A message tried again keeps its
Message-ID (the spool holds it), so a receiver can tell a second copy. Against a real SMTP
server (aiosmtpd), which adds nothing."""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import replace

from helpers import call_csv
from smtp_server import running_smtp

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings


def test_results_mail_has_a_date_and_its_own_message_id(settings: Settings) -> None:
    with running_smtp("results@connectbatch.test") as (inbox, smtp):
        services = Services(replace(settings, smtp=smtp))
        draft = Connection(
            "Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
            return_email="ops@acme.example",
        )  # fmt: skip
        services.create_connection(draft)
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        services.ingest_bytes("Acme", "one.csv", call_csv(2, prefix="one"))
        services.ingest_bytes("Acme", "two.csv", call_csv(2, prefix="two"))
        services.outbox.send_due()

    first, second = inbox.messages
    for message in (first, second):
        sent = email.utils.parsedate_to_datetime(str(message["Date"]))
        assert before <= sent <= dt.datetime.now(dt.UTC)
        assert str(message["Message-ID"]).endswith("@connectbatch.test>")
    assert first["Message-ID"] != second["Message-ID"]
