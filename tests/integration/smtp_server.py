"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the tests that send mail: results and
status files, alerts, answers to partners' mail. One copy for every test file."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from helpers.ports import free_port

from connectbatch.settings import SmtpSettings

HOST = "127.0.0.1"


class Inbox:
    """What the server received, in order: (envelope sender, message)."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, EmailMessage]] = []

    @property
    def messages(self) -> list[EmailMessage]:
        return [message for _sender, message in self.envelopes]

    def clear(self) -> None:
        self.envelopes.clear()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.envelopes.append((envelope.mail_from, parsed))  # type: ignore[arg-type]
        return "250 OK"


@contextmanager
def running_smtp(
    sender: str = "results@connectbatch.test",
    handler: Inbox | None = None,
    port: int = 0,
    smtputf8: bool = False,
) -> Iterator[tuple[Inbox, SmtpSettings]]:
    """The server on `port` (a free one by default), and the settings that send to it;
    stopped on exit. `handler`: an Inbox that answers otherwise. `smtputf8`: the server
    offers SMTPUTF8 (RFC 6531), as Postfix 3 and the large providers do."""
    handler = handler or Inbox()
    port = port or free_port()
    controller = Controller(handler, hostname=HOST, port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield handler, SmtpSettings(host=HOST, port=port, sender=sender)
    finally:
        controller.stop()


def use_smtp(monkeypatch: pytest.MonkeyPatch, smtp: SmtpSettings) -> None:
    """Point Settings.from_env() at the server."""
    monkeypatch.setenv("CONNECTBATCH_SMTP_HOST", smtp.host or HOST)
    monkeypatch.setenv("CONNECTBATCH_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("CONNECTBATCH_SMTP_FROM", smtp.sender)
