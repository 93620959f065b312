"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the tests that send mail: results and
status files, alerts, answers to partners' mail. One copy for every test file."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

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
    sender: str = "results@connectbatch.test", handler: Inbox | None = None, port: int = 0
) -> Iterator[tuple[Inbox, SmtpSettings]]:
    """The server on `port` (a free one by default), and the settings that send to it;
    stopped on exit. `handler`: an Inbox that answers otherwise."""
    handler = handler or Inbox()
    if not port:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
    controller = Controller(handler, hostname=HOST, port=port)
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
