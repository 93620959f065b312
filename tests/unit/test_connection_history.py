"""The pieces of a connection's history that need no server (issue 11, defects 10 and 11):
when a mail may be answered, whom to answer, the answer's wording, the app's events table."""

from __future__ import annotations

import datetime as dt

import pytest

from app_pages._run_history import events_table
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.pipeline.history import TNEF_HELP, auto_generated, reply_address
from connectbatch.pipeline.mailer import compose_unmatched
from connectbatch.settings import SmtpSettings
from connectbatch.store.events import ConnectionEvent

NOW = dt.datetime(2026, 3, 1, 14, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (b"From: a@p.example\nAuto-Submitted: auto-generated\n", "Auto-Submitted"),
        (b"From: a@p.example\nAuto-Submitted: no\n", None),
        (b"From: a@p.example\nPrecedence: junk\n", "Precedence"),
        (b"From: a@p.example\nPrecedence: first-class\n", None),
        (b"From: a@p.example\nList-Id: <l.p.example>\n", "mailing list"),
        (b"From: a@p.example\nReturn-Path: <>\n", "Return-Path"),
        (b"From: a@p.example\nReturn-Path: <a@p.example>\n", None),
        (b"From: Mail Delivery <MAILER-DAEMON@p.example>\n", "MAILER-DAEMON"),
        (b"From: postmaster@p.example\n", "MAILER-DAEMON"),
    ],
)
def test_auto_generated_mail_is_recognised(headers: bytes, reason: str | None) -> None:
    found = auto_generated(headers)
    assert (found is None) if reason is None else (reason in (found or ""))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (b"From: Reports <Reports@P.example>\n", "reports@p.example"),
        (b"From: a@p.example\nReply-To: ops@p.example\n", "ops@p.example"),
        (b"From: a@p.example, b@p.example\n", None),  # whom to answer is not clear
        (b"Subject: no sender\n", None),
    ],
)
def test_the_answer_goes_to_one_clear_address(headers: bytes, expected: str | None) -> None:
    assert reply_address(headers) == expected


def test_the_answer_says_what_arrived_and_the_pattern_without_partner_control_bytes() -> None:
    connection = Connection("Acme", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                            pattern="calls_*.csv")  # fmt: skip
    message = compose_unmatched(
        SmtpSettings(host="127.0.0.1", sender="cb@example.test"), "a@p.example", connection,
        subject="march\x1b[2J", message_id="<1@p.example>", attachments=["notes\r\nBcc: x@y.z.txt"],
        pattern=connection.pattern,
    )  # fmt: skip
    assert message["Auto-Submitted"] == "auto-replied" and message["In-Reply-To"] == "<1@p.example>"
    assert message["Bcc"] is None
    text = message.get_content()
    assert "calls_*.csv" in text and "\x1b" not in text and "notes\\r\\nBcc" in text


def test_the_answer_to_a_winmail_dat_says_what_to_change_in_outlook() -> None:
    connection = Connection("Acme", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                            pattern="calls_*.csv")  # fmt: skip
    message = compose_unmatched(
        SmtpSettings(host="127.0.0.1", sender="cb@example.test"), "a@p.example", connection,
        subject="calls", message_id="<1@p.example>", attachments=["winmail.dat"],
        pattern=connection.pattern, tnef=TNEF_HELP,
    )  # fmt: skip
    text = message.get_content()
    assert "To fix it: winmail.dat is Outlook's rich-text (TNEF) wrapper" in text
    assert "send the mail as HTML or plain text, not Rich Text." in text
    assert text.count("To fix it") == 1  # found by an e-mail audit: a second, renaming advice too


def test_the_events_table_escapes_partner_text() -> None:
    event = ConnectionEvent(1, 1, NOW, NOW, "mail_unmatched", "mail from a@p.example 'x\x1b[31m'", 1, None,
                            "a@p.example", True, "mail:<1@p>")  # fmt: skip
    [row] = events_table([event])
    assert row["Event"] == "Mail with nothing taken" and row["Sender told"] == "yes"
    assert "\x1b" not in row["What"] and "\\x1b" in row["What"]
