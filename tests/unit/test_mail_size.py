"""The e-mail pull's size rule (`transfer/pull/imap/size.py`): which messages are too large
to download, judged from the size the server tells before anything is downloaded, and the
words the history and the answer to the sender use."""

from __future__ import annotations

import datetime as dt
import os
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from app_pages._run_history import events_table
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.pipeline.mailer import compose_unmatched
from connectbatch.settings import SmtpSettings
from connectbatch.store.events import MAIL_TOO_LARGE, ConnectionEvent
from connectbatch.transfer.pull.imap.size import MESSAGE_MARGIN, largest_message, too_large, too_large_reason

GIB = 1024**3


def mail_with(payload: bytes, name: str = "calls.csv") -> bytes:
    """A mailer's message carrying one attachment (base64, as mailers send files), with
    CRLF line ends as IMAP servers count RFC822.SIZE."""
    message = EmailMessage()
    message["From"] = "Partner Reports <reports@partner.example>"
    message["To"] = "inbox+acme@example.test"
    message["Subject"] = "Daily conversions"
    message.set_content("Files attached.\n")
    message.add_attachment(payload, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes(policy=SMTP)


def test_one_byte_over_the_largest_message_is_too_large() -> None:
    largest = largest_message(4096)
    assert not too_large(largest, 4096)
    assert too_large(largest + 1, 4096)


def test_the_default_limit_allows_a_2_gib_file_in_base64_and_not_much_more() -> None:
    largest = largest_message(2 * GIB)
    base64_of_the_file = (2 * GIB + 2) // 3 * 4
    assert base64_of_the_file < largest < 2 * GIB * 1.4  # room for line breaks, headers, a body
    assert largest - base64_of_the_file * 78 // 76 <= MESSAGE_MARGIN + 4


@pytest.mark.parametrize("file_bytes", [1, 2, 3, 57, 76, 4096, 100_000, 1_000_003])
def test_a_mail_with_a_file_at_the_limit_is_never_too_large(file_bytes: int) -> None:
    # random bytes: nothing in the base64 can be shorter than the rule assumes
    assert not too_large(len(mail_with(os.urandom(file_bytes))), file_bytes)


def test_a_mail_whose_file_is_well_over_the_limit_is_too_large() -> None:
    limit = 1024 * 1024
    assert too_large(len(mail_with(os.urandom(limit * 13 // 10))), limit)


@pytest.mark.parametrize(("size", "limit"), [(None, 4096), (10**12, None), (None, None)])
def test_an_unknown_size_or_no_limit_downloads_as_before(size: int | None, limit: int | None) -> None:
    assert not too_large(size, limit)


def test_the_reason_names_the_size_and_both_limits() -> None:
    reason = too_large_reason(3_221_225_472, 2 * GIB)
    assert reason.startswith("the message is 3,221,225,472 bytes, larger than the limit of ")
    assert f"{largest_message(2 * GIB):,} bytes" in reason and "2,147,483,648 bytes" in reason
    # the partner reads it: no setting of ours they cannot change (an e-mail audit)
    assert "CONNECTBATCH_MAX_FILE_BYTES" not in reason and reason.endswith("it was not downloaded")


def test_the_answer_to_a_mail_too_large_says_so_without_partner_control_bytes() -> None:
    connection = Connection("Acme", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                            pattern="calls_*.csv")  # fmt: skip
    message = compose_unmatched(
        SmtpSettings(host="127.0.0.1", sender="cb@example.test"), "a@p.example", connection,
        subject="march\x1b[2J", message_id="<1@p.example>", attachments=[], pattern=connection.pattern,
        too_large=too_large_reason(700_000, 4096),
    )  # fmt: skip
    assert "too large" in str(message["Subject"]) and message["Auto-Submitted"] == "auto-replied"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "700,000 bytes" in text and "4,096 bytes" in text and "\x1b" not in text
    assert "It had no attachment" not in text  # not the wording of a mail with nothing matching
    # found by an e-mail audit: the answer said to send the file compressed, which the limit
    # (counted as unpacked) then refused too
    assert "split it into smaller files" in text and "send the file compressed" not in text


def test_the_history_names_the_event_for_a_person() -> None:
    now = dt.datetime(2026, 3, 1, 14, 5, tzinfo=dt.UTC)
    event = ConnectionEvent(1, 1, now, now, MAIL_TOO_LARGE, "mail from a@p.example 'x\x1b[31m'", 1, None,
                            "a@p.example", True, "mail:<1@p.example>")  # fmt: skip
    [row] = events_table([event])
    assert row["Event"] == "Mail too large to download" and "\x1b" not in row["What"]
