"""Returned results by e-mail: after an inbound run (and after a held batch is decided), its
summary and results files go to the credential's return address, else the connection's, else
the partner's (`ServiceBase._return_address`), as the seeds' "return email" promises.

Configured by `Settings.smtp` (CONNECTBATCH_SMTP_HOST, unset = no e-mail; _PORT, _USER,
_PASSWORD, _STARTTLS, _FROM, _MAX_BYTES; read in settings.py). This module composes; results,
status files, alerts and automatic answers are sent through the outbox (pipeline/outbox.py,
which retries and never fails a run; answers with an empty envelope sender).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import gzip
import logging
import smtplib
import socket
import threading
from collections.abc import Iterator
from email import errors as email_errors
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from connectbatch.escaping import visible
from connectbatch.models import Connection, Run
from connectbatch.settings import SmtpSettings

__all__ = [
    "SmtpSettings", "address_to", "attach", "compose", "compose_unmatched", "one_address", "recipient_of",
    "stamp", "transmit",
]  # fmt: skip

log = logging.getLogger("connectbatch.pipeline.mailer")
# One message's whole SMTP session at most, in seconds: well under the outbox's claim
# (outbox.CLAIM_SECONDS, 600 s), past which another process's sender would send it again.
SEND_SECONDS = 300.0


# What an address alone in a To header may carry beside no defect: a local part that is not
# ASCII is sent with SMTPUTF8 (`transmit`).
_TOLERATED = (email_errors.NonASCIILocalPartDefect,)
NOT_ONE_ADDRESS = "it is not one e-mail address a mail header carries as it is"
# What Python's header parser raises, instead of a defect, on some addresses (`ops@[acme.example`).
HEADER_ERRORS = (email_errors.MessageError, AttributeError, ValueError, IndexError)


def recipient_of(message: EmailMessage) -> str | None:
    """The one mailbox `message` is addressed to, as its To header reads it, or None.

    The outbox sends to this address. The loose pattern return and owner addresses are checked
    with (`x@y.z`) let through text a header reads as something else: `ops,cfo@acme.example`
    is two recipients, `=?utf-8?q?cfo?=@acme.example` is decoded to cfo@acme.example, `"ops@x`
    quoted; sending to the parsed header's text mailed a partner's results to another mailbox.
    Only a header that parses, without a defect, to one address is taken."""
    try:
        header = message["To"]
        addresses: tuple[Address, ...] = tuple(getattr(header, "addresses", ()))
        defects: tuple[object, ...] = tuple(getattr(header, "defects", ()))
    except HEADER_ERRORS:
        return None  # Python's header parser fails outright on some (`ops@[acme.example`)
    if header is None or len(addresses) != 1 or any(not isinstance(d, _TOLERATED) for d in defects):
        return None
    found = str(addresses[0].addr_spec)
    local, _, domain = found.rpartition("@")
    if not local or not domain or not found.isprintable():
        return None
    return found


# Where `address_to` keeps, escaped, an address no To header can hold (the outbox names it
# in the history line of the message it gives up).
UNUSABLE_TO = "X-ConnectBatch-Unusable-To"


def address_to(message: EmailMessage, to: str) -> None:
    """Address `message` to `to`. Python's header parser raises on some addresses the loose
    check lets through (`ops@[acme.example`): a results mail then failed in a hook that only
    logs, and no history line said the partner got nothing. Such a message is left without a
    To, so the outbox gives it up with that line (`recipient_of` is None)."""
    try:
        message["To"] = to
    except HEADER_ERRORS:
        message[UNUSABLE_TO] = visible(to)


def stamp(message: EmailMessage, now: dt.datetime) -> None:
    """Give `message` the Date RFC 5322 requires and a Message-ID, unless it has them. Relays
    that add neither passed our mail on without, and Gmail refuses mail without a valid
    Message-ID (550 5.7.1): a partner there got no results. Stamped once, when queued, so a
    message tried again is the same message to the receiver."""
    if message["Date"] is None:
        message["Date"] = email.utils.format_datetime(now.astimezone(dt.UTC), usegmt=True)
    if message["Message-ID"] is None:
        domain = email.utils.parseaddr(str(message["From"] or ""))[1].rpartition("@")[2]
        ours = (
            domain
            if domain and domain.isascii() and domain.replace(".", "").replace("-", "").isalnum()
            else None
        )
        message["Message-ID"] = email.utils.make_msgid("connectbatch", domain=ours or "connectbatch.local")


def one_address(text: str) -> str | None:
    """The mailbox a message to `text` reaches (`recipient_of`: `Ops<ops@x.example>` is
    ops@x.example), or None when no To header carries it as it is."""
    message = EmailMessage()
    try:
        message["To"] = text.strip()
    except HEADER_ERRORS:
        return None
    return recipient_of(message)


def compose(
    smtp: SmtpSettings, to: str, connection: Connection, run: Run, attachments: list[Path]
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    address_to(message, to)
    message["Subject"] = f"[ConnectBatch] {visible(connection.name)}: run {run.id} {run.status.value}"
    lines = [
        f"Connection: {visible(connection.name)}",
        f"Run: {run.id} ({run.trigger}), {run.status.value}",
        f"Files: {run.files_seen} seen, {run.files_loaded} loaded, {run.files_skipped} skipped",
        f"Rows: {run.rows_accepted} accepted, {run.rows_rejected} rejected, {run.rows_duplicate} duplicate",
        f"Actions: {run.actions_created} created, {run.actions_changed} changed",
    ]
    if run.reason:
        lines.append(f"Reason: {visible(run.reason)}")  # file names in it cannot add lines
    lines.append("")
    lines.append("The attached results file lists every input line with its status and reason.")
    parts, notes = fitted(attachments, smtp.max_bytes)
    message.set_content("\n".join(lines + notes))
    for name, data, maintype, subtype in parts:
        attach(message, data, maintype, subtype, name)
    return message


def attach(message: EmailMessage, data: bytes, maintype: str, subtype: str, name: str) -> None:
    """Attach a file we wrote. Our CSVs are UTF-8, and a text part without a charset is
    US-ASCII to MIME (RFC 2046): a partner's `São Paulo` key read as `S��o Paulo`."""
    params = {"charset": "utf-8"} if maintype == "text" else None
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name, params=params)


Part = tuple[str, bytes, str, str]  # file name, bytes, MIME type and subtype


def fitted(paths: list[Path], limit: int) -> tuple[list[Part], list[str]]:
    """The results files as attachments within `limit` bytes, and what the body must say
    about them. A big file's results CSV (a million rows: ~100 MB) went out as it was and
    the relay refused the whole message (552), so the partner got nothing; now over the
    limit the CSVs go gzip-compressed (CSV shrinks ~10x), and a file still too large is left
    out with a line saying so, the summary and the other files still attached.

    A part is counted as the message carries it (`wire_bytes`: base64, a third larger): the
    limit is the relay's, and files that fit it on disk made a message over it."""
    files = [(p.name, p.read_bytes(), *_mime(p)) for p in paths]
    if sum(wire_bytes(len(f[1])) for f in files) <= limit:
        return files, []
    packed = [
        (name + ".gz", gzip.compress(data, compresslevel=6, mtime=0), "application", "gzip")
        if sub == "csv" else (name, data, main, sub)
        for name, data, main, sub in files
    ]  # fmt: skip
    kept: list[Part] = []
    notes = [""]
    for part in sorted(packed, key=lambda p: len(p[1])):  # the summaries first
        if sum(wire_bytes(len(k[1])) for k in kept) + wire_bytes(len(part[1])) <= limit:
            kept.append(part)
        else:
            notes.append(
                f"{part[0]} ({len(part[1]) / 1e6:.1f} MB) is too large for e-mail and is not attached: "
                "ask your ConnectBatch contact for it."
            )
    if any(name.endswith(".gz") for name, *_ in kept):
        notes.insert(1, "The results files are compressed with gzip (.gz) to fit in an e-mail.")
    order = [p.name for p in paths]
    kept.sort(key=lambda p: order.index(p[0].removesuffix(".gz")))
    return kept, notes


def wire_bytes(size: int) -> int:
    """The bytes an attachment of `size` bytes takes in the message: base64 (4 for every 3),
    in lines of 76 characters ended by CRLF, as `EmailMessage.add_attachment` writes bytes."""
    encoded = -(-size // 3) * 4
    return encoded + 2 * -(-encoded // 76)


def _mime(path: Path) -> tuple[str, str]:
    return ("application", "json") if path.suffix == ".json" else ("text", "csv")


class _BoundedSMTP(smtplib.SMTP):
    """An SMTP session its `expire` ends at once, whatever step it is in: its socket (the TLS
    one after STARTTLS) is shut down under the thread reading it."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout)  # connects later, so the socket is known first
        self._guard = threading.Lock()
        self._connected: socket.socket | None = None
        self.expired = False

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        with self._guard:
            self._connected = sock
            if self.expired:
                sock.close()
        return sock

    def expire(self) -> None:
        with self._guard:
            self.expired = True
            sock = self.sock or self._connected
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already (or detached by TLS)
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def _client(smtp: SmtpSettings) -> Iterator[smtplib.SMTP]:
    """A logged-in SMTP session (STARTTLS first when configured). Once the body went, what
    the server answers to QUIT does not matter: smtplib's own `with` raised on anything but
    221, and a message the server had taken was then sent again (or said not sent).
    The whole session ends by SEND_SECONDS (`_BoundedSMTP`): each read's timeout ends only a
    silence, and a relay sending a byte now and then held the sender for ever."""
    client = _BoundedSMTP(smtp.timeout)
    timer = threading.Timer(SEND_SECONDS, client.expire)
    timer.daemon = True
    timer.start()
    try:
        client.connect(smtp.host, smtp.port)
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        yield client
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()
    except (OSError, smtplib.SMTPException) as exc:
        if not client.expired:
            raise
        raise TimeoutError(  # an OSError: a temporary failure, tried again later
            f"the SMTP server at {smtp.host}:{smtp.port} took longer than {SEND_SECONDS:g} s "
            "for one message (it stalls or answers very slowly)"
        ) from exc
    finally:
        timer.cancel()
        client.close()


def transmit(smtp: SmtpSettings, data: bytes, recipient: str, envelope_from: str | None) -> None:
    """Send a message as it was spooled (pipeline/outbox.py); raises what smtplib raises.
    An address that is not ASCII (a partner's "büro@müller.example") goes with SMTPUTF8
    (RFC 6531), which smtplib asks for and refuses (SMTPNotSupportedError) when the server
    does not offer it; plain SMTP cannot carry such an address at all."""
    sender = envelope_from or smtp.sender
    # headers in UTF-8 (a Reply-To of a connection whose address is not ASCII) need it too:
    # they went out raw without it, and a strict relay refuses such a message
    headers = data.split(b"\r\n\r\n", 1)[0]
    plain = sender.isascii() and recipient.isascii() and headers.isascii()
    options = [] if plain else ["SMTPUTF8"]
    with _client(smtp) as client:
        client.sendmail(sender, [recipient], data, mail_options=options)


def results_of_run(outbound: Path, connection_id: int, run_id: int) -> list[Path]:
    folder = outbound / str(connection_id)
    if not folder.exists():
        return []
    return sorted(p for p in folder.glob(f"run{run_id}-file*") if p.is_file())


def compose_unmatched(
    smtp: SmtpSettings,
    to: str,
    connection: Connection,
    *,
    subject: str,
    message_id: str,
    attachments: list[str],
    pattern: str,
    too_large: str = "",
    tnef: str = "",
) -> EmailMessage:
    """The answer to a mail that brought nothing we could take: what arrived, the pattern
    expected, how to fix it (`tnef`: what to change when Outlook wrapped the files in
    winmail.dat); or, with `too_large` (the transport's reason: the mail's size
    and the limit), that it was too large to be read at all. Partner text (names, subject)
    is escaped, never a header line.

    Marked `Auto-Submitted: auto-replied` (RFC 3834) so well-behaved systems never answer
    it in turn, and sent with an empty envelope sender so a bounce cannot start a loop."""
    what = "your mail was too large" if too_large else "nothing taken from your mail"
    message = _auto_reply(smtp, to, f"[ConnectBatch] {visible(connection.name)}: {what}", message_id)
    lines = [
        f"Your mail {visible(subject)!r} to the connection {visible(connection.name)} arrived, "
        "but nothing in it was taken.",
        "",
    ]
    if too_large:
        lines += [
            f"It was not read: {too_large}.",
            "",
            "To fix it: split it into smaller files, one mail each. Compressing it does not help:",
            "a compressed file counts at its size once unpacked.",
        ]
    else:
        if attachments:
            lines.append("Attachments that arrived:")
            lines += [f"  - {visible(name)}" for name in attachments]
        else:
            lines.append("It had no attachment.")
        lines += [
            "",
            f"Files are taken when their name matches: {visible(pattern)}",
            "('*' stands for any characters, '?' for one; case matters. A .gz file, or a .zip",
            "with one file inside, matches by the name of the file inside.)",
            "",
            # one advice: a winmail.dat's files may match, hidden in it (an e-mail audit: the
            # answer gave both, as if the name were at fault too)
            f"To fix it: {tnef}." if tnef else f"To fix it: {RENAME}",
        ]
    lines.append("This is an automatic answer; further mails about the same problem may not be answered.")
    message.set_content("\n".join(lines))
    return message


RENAME = "send the file again as an attachment named to match the pattern."


def compose_dry_run(
    smtp: SmtpSettings,
    to: str,
    connection: Connection,
    *,
    file: str,
    summary: str,
    results_name: str,
    results_csv: bytes,
    message_id: str = "",
) -> EmailMessage:
    """The answer to a partner's dry run (pipeline/dryrun.py): what the connection would do
    with the file, the results file attached. Nothing was stored, and the text says so.
    An automatic answer (RFC 3834), like `compose_unmatched`: sent with `Outbox.answer`."""
    message = _auto_reply(
        smtp, to, f"[ConnectBatch] {visible(connection.name)}: dry run of {visible(file)}", message_id
    )
    lines = [
        f"Dry run of {visible(file)} for the connection {visible(connection.name)}.",
        "Nothing was stored: no rows were loaded and no actions were created.",
        "",
        visible(summary),
        "",
        f"The attached {results_name} lists every line with what a real delivery would do",
        "(WOULD_BE_ACCEPTED, WOULD_BE_REJECTED, WOULD_BE_DUPLICATE, WOULD_REPLACE, ...) and why.",
    ]
    message.set_content("\n".join(lines))
    attach(message, results_csv, "text", "csv", results_name)
    return message


def _auto_reply(smtp: SmtpSettings, to: str, subject: str, message_id: str) -> EmailMessage:
    """An automatic answer's headers (RFC 3834 `Auto-Submitted`, no Outlook auto-replies back),
    threaded to the partner's mail when its Message-ID is a clean one-line value."""
    message = EmailMessage()
    message["From"] = smtp.sender
    address_to(message, to)
    message["Subject"] = subject
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    if message_id and "\n" not in message_id and "\r" not in message_id:
        message["In-Reply-To"] = message_id
        message["References"] = message_id
    return message
