"""A message whose headers are UTF-8 (the Reply-To of a connection whose address is not
ASCII, one from before addresses were made in ASCII) asks for SMTPUTF8 even when both envelope
addresses are ASCII (an operator audit: it went out raw, which a strict relay refuses)."""

from __future__ import annotations

from typing import Any

from smtp_server import Inbox, running_smtp

from connectbatch.pipeline import mailer


class WithOptions(Inbox):
    """Keeps each message's MAIL FROM options too."""

    def __init__(self) -> None:
        super().__init__()
        self.options: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)


def message(reply_to: str) -> bytes:
    return (
        f"From: results@connectbatch.test\r\nTo: ops@partner.example\r\nReply-To: {reply_to}\r\n"
        "Subject: results\r\n\r\nattached\r\n"
    ).encode()


def test_utf_8_headers_are_sent_with_smtputf8_and_ascii_ones_without() -> None:
    inbox = WithOptions()
    with running_smtp(handler=inbox, smtputf8=True) as (_, smtp):
        mailer.transmit(smtp, message("inbox+müller-media@connectbatch.test"), "ops@partner.example", None)
        mailer.transmit(smtp, message("inbox+acme-1a2b3c4d@connectbatch.test"), "ops@partner.example", None)
    assert ["SMTPUTF8" in o for o in inbox.options] == [True, False], inbox.options
