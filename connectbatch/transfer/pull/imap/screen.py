"""Screening on the server, before anything is downloaded: which messages are addressed to
the connection, whose sender is refused, which are too large, which cannot hold an
attachment, from one FETCH of small items per batch of UIDs.

Only a message screened `Verdict.DOWNLOAD` is ever downloaded (`ImapTransport._message`,
which asks for the size itself when it has none from here).
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.utils
import enum
from dataclasses import dataclass
from typing import Final

from imap_tools import BaseMailBox

from connectbatch.errors import TransportError
from connectbatch.transfer.pull.imap import size as message_size
from connectbatch.transfer.pull.imap.message import internaldate
from connectbatch.transfer.pull.imap.response import as_number, as_text, may_have_attachments, parse_fetch
from connectbatch.transfer.pull.imap.session import ImapSession

# Address headers a message can carry the plus-address in (Delivered-To/X-Original-To are
# added by the delivering MTA, so Bcc'd mail is found too).
RECIPIENT_HEADERS: Final = ("To", "Cc", "Delivered-To", "X-Original-To")
DELIVERY_HEADERS: Final = ("Delivered-To", "X-Original-To")  # the address this copy was for
# Headers read with the structure to record and answer a message that brings nothing
# (pipeline.history decides whether answering is safe).
ANSWER_HEADERS: Final = (
    "From", "Reply-To", "Subject", "Message-ID", "Auto-Submitted", "Precedence", "List-Id",
    "List-Unsubscribe", "Return-Path",
)  # fmt: skip


class Verdict(enum.Enum):
    """What listing does with a message, decided before downloading it."""

    DOWNLOAD = "download"  # may hold a matching attachment: downloaded and walked
    SENDER_REFUSED = "sender refused"  # not on the allowed senders: recorded as skipped
    TOO_LARGE = "too large"  # over `size.largest_message`: recorded, answered, never downloaded
    NO_ATTACHMENT = "no attachment"  # its structure holds none: recorded, answered


@dataclass(frozen=True)
class Screened:
    """One message addressed to the connection, as the server described it."""

    uid: int
    arrived: dt.datetime | None  # INTERNALDATE
    verdict: Verdict
    headers: bytes  # the RECIPIENT_HEADERS and ANSWER_HEADERS fields, as the server sent them
    size: int | None  # RFC822.SIZE: what downloading it would read
    sender: str = ""  # the refused sender (SENDER_REFUSED)


def raw_values(parsed: email.message.Message, name: str) -> list[str]:
    """The values of header `name` as sent, raw UTF-8 (RFC 6532: an address such as
    inbox+müller-media@...) decoded as such: `get_all` replaces those bytes, so a connection
    whose name made a UTF-8 address never matched its own mail."""
    return [
        str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        for key, value in parsed.raw_items()
        if key.lower() == name.lower()
    ]


class MessageScreen(ImapSession):
    """The screening half of `ImapTransport` (needs a session; knows nothing of files)."""

    def _screen(self, box: BaseMailBox, uids: list[int]) -> list[Screened]:
        """From one batch of UIDs, those addressed to the recipient, oldest first, each with
        its verdict. The sender is checked first (a refused sender is never answered), then
        the size, then the structure."""
        headers = " ".join(h.upper() for h in (*RECIPIENT_HEADERS, *ANSWER_HEADERS))
        items = f"(UID INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS ({headers})])"
        data = self._command(
            box, "reading message structure failed", "FETCH", ",".join(map(str, uids)), items
        )
        try:
            responses = parse_fetch(data)
        except (ValueError, IndexError) as exc:
            raise TransportError(f"{self._where}: unreadable FETCH response: {exc}") from exc
        # unsolicited FETCH responses (flag changes by another client) carry no UID: skip them
        with_uid = [(uid, r) for r in responses if (uid := as_number(r.get("UID"))) is not None]
        found: list[Screened] = []
        for uid, response in sorted(with_uid, key=lambda pair: pair[0]):
            header_block = next((v for k, v in response.items() if k.startswith("BODY[HEADER.FIELDS")), b"")
            header_bytes = header_block if isinstance(header_block, bytes) else b""
            if not self._addressed(header_bytes):
                continue
            size = as_number(response.get("RFC822.SIZE"))
            sender = self._refused_sender(header_bytes)
            if sender is not None:
                verdict = Verdict.SENDER_REFUSED
            elif message_size.too_large(size, self._endpoint.max_bytes):
                verdict = Verdict.TOO_LARGE
            elif not may_have_attachments(response.get("BODYSTRUCTURE")):
                verdict = Verdict.NO_ATTACHMENT
            else:
                verdict = Verdict.DOWNLOAD
            arrived = internaldate(response.get("INTERNALDATE"))
            found.append(Screened(uid, arrived, verdict, header_bytes, size, sender or ""))
        return found

    def _server_size(self, box: BaseMailBox, uid: int) -> tuple[bool, int | None]:
        """(whether the message still exists, its RFC822.SIZE) by one small FETCH: for a
        message this instance did not screen (listed by another one)."""
        doing = f"reading the size of message UID {uid} failed"
        data = self._command(box, doing, "FETCH", str(uid), "(UID RFC822.SIZE)")
        try:
            responses = parse_fetch(data)
        except (ValueError, IndexError) as exc:
            raise TransportError(f"{self._where}: unreadable FETCH response: {exc}") from exc
        ours = [r for r in responses if as_text(r.get("UID")) == str(uid)]
        return (True, as_number(ours[0].get("RFC822.SIZE"))) if ours else (False, None)

    def _refused_sender(self, header_block: bytes) -> str | None:
        """None when the allow-list is empty or the From address is on it (an address, or
        its `@domain`); otherwise the From address (or "no sender") for the record. The From
        header can be forged: this keeps out mail sent to the address by mistake or spam,
        it does not prove who sent a message."""
        allowed = self._settings.allowed_senders
        if not allowed:
            return None
        parsed = email.message_from_bytes(header_block)
        senders = [addr.strip().lower() for _, addr in email.utils.getaddresses(raw_values(parsed, "From"))]
        senders = [s for s in senders if s]
        if len(senders) == 1:
            sender = senders[0]
            if sender in allowed or "@" + sender.rpartition("@")[2] in allowed:
                return None
            return sender
        return ", ".join(senders) or "no sender"

    def _addressed(self, header_block: bytes) -> bool:
        """Exact (case-insensitive) match of the recipient against the address headers.

        A copy the mail server delivered to one plus-address of this mailbox says which
        (Delivered-To, X-Original-To): then only that counts, not To/Cc. A mail to two
        connections arrives as a copy for each, both naming both in To/Cc, and the connection
        read first took both copies (marking them) while the other never got its file."""
        wanted = self._settings.recipient
        return wanted is None or wanted.lower() in self._addressees(header_block)

    def _addressees(self, header_block: bytes) -> frozenset[str]:
        """The addresses (lower case) a message counts as sent to, as `_addressed` reads them:
        the plus-addresses of this mailbox a copy was delivered to, else To/Cc/Delivered-To/
        X-Original-To (one copy kept for all of them, `shared`)."""
        wanted = self._settings.recipient or ""
        parsed = email.message_from_bytes(header_block)

        def addresses(headers: tuple[str, ...]) -> set[str]:
            values = [v for h in headers for v in raw_values(parsed, h)]
            return {addr.strip().lower() for _, addr in email.utils.getaddresses(values)}

        local, _, domain = wanted.lower().rpartition("@")
        box = local.partition("+")[0] + "+"
        delivered = {a for a in addresses(DELIVERY_HEADERS) if a.endswith("@" + domain) and a.startswith(box)}
        return frozenset(delivered or addresses(RECIPIENT_HEADERS))
