"""What the IMAP pull reads out of a downloaded message: safe attachment file names, the dates
a file is given, and header text cut to one line."""

from __future__ import annotations

import binascii
import datetime as dt
import email
import email.errors
import email.header
import io
import mimetypes
import quopri
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.mime.application import MIMEApplication
from typing import Any, Final

from imap_tools import MailAttachment, MailMessage

from connectbatch.transfer.pull.imap import tnef
from connectbatch.transfer.pull.imap.response import CSV_TYPES, as_text

MAX_NAME_BYTES: Final = 255


def safe_filename(raw: str | None, index: int, content_type: str = "") -> str:
    """A file name that is safe to show, match and write: no directory parts (so
    ``../../etc/passwd.csv`` is ``passwd.csv``), no control or invisible format characters
    (a right-to-left override can make ``gpj.exe`` look like ``exe.jpg``), no leading or
    trailing dots and spaces, at most 255 bytes. An attachment with no usable name gets
    ``attachment-<n><ext>`` (``n`` = position in the message, from 1; ext from its type).

    The raw name is already decoded by imap-tools (RFC 2231 and RFC 2047)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Zl", "Zp"})
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = name.strip().strip(".").strip()
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext) > 16:
            stem, ext = name, ""
        suffix = f".{ext}" if ext else ""
        budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
        name = stem + suffix
    if not name:
        ext = mimetypes.guess_extension(content_type or "", strict=False) or ".bin"
        name = f"attachment-{index + 1}{ext}"
    return name


@dataclass(frozen=True)
class Attachment:
    """One attachment of a message: imap-tools' part, the safe name it is listed under, and
    `forwarded`, which forwarded mail it came out of ("" for the message's own)."""

    part: MailAttachment
    name: str
    forwarded: str = ""


def attachments(message: MailMessage) -> list[Attachment]:
    """The message's attachments, in order: parts with a file name or a Content-ID, plus
    `Content-Disposition: attachment` with no name (a CSV some mailers and scripts attach
    nameless, which was lost: `attachment-<n>.csv` from `safe_filename`).

    A forwarded mail (a message/rfc822 part, e.g. a partner forwarding its vendor's report
    mail) is not a file: it was listed as ``attachment-<n>.eml`` (a run taking ``*`` failed
    on it as a CSV), and one sent base64-encoded (as some mailers do) hid its CSV. Its own
    attachments are listed instead, each recording which mail it came out of; a name taken
    by an attachment before it gets ``-<n>`` before its extension, so the two never share a
    name. One that cannot be opened (nested over `MAX_FORWARD_DEPTH`) stays one .eml file.
    The listing and the download both count from here, so an attachment's number and name
    are the same in both."""
    found: list[Attachment] = []
    own_names = set()
    for index, (part, forwarded) in enumerate(_attached(message.obj, "", 0)):
        attachment = MailAttachment(part)
        name = safe_filename(attachment.filename, index, attachment.content_type)
        if forwarded and name.lower() in own_names:
            stem, dot, ext = name.rpartition(".")
            name = safe_filename(
                f"{stem}-{index + 1}.{ext}" if dot and stem else f"{name}-{index + 1}", index
            )
        own_names.add(name.lower())
        found.append(Attachment(attachment, name, forwarded))
    return found


# Defects Python's parser records on a mail whose bytes are not what was sent: cut off before
# a closing boundary (an attachment's end is missing), or base64 with characters that are not
# base64 (dropped silently on decoding: "Boston" came out "Bo").
_DAMAGE: Final = (
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.InvalidBase64CharactersDefect,
    email.errors.InvalidBase64PaddingDefect,
    email.errors.InvalidBase64LengthDefect,
)


def damage(message: MailMessage, attachment: MailAttachment) -> list[str]:
    """Why the attachment's decoded bytes are not the ones sent (call after reading its
    `payload`, which records its own base64 defects): its part's defects and the boundary
    defects of the mail around it, as the parser names them."""
    found = [*attachment.part.defects, *(d for part in message.obj.walk() for d in part.defects)]
    return sorted({type(d).__name__ for d in found if isinstance(d, _DAMAGE)})


TNEF_TYPES: Final = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})


def is_tnef(attachment: Attachment) -> bool:
    """Outlook's rich-text wrapper (TNEF, ``winmail.dat``) that could not be opened (one
    that could is listed as the files inside it, `_unwrapped`). It is never a file to take
    (read as a CSV it failed the run on "a NUL byte"); a mail that brings only it is recorded
    saying what the sender must change."""
    return _tnef_part(attachment.part.part)


MAX_FORWARD_DEPTH: Final = 5  # a forward of a forward of ...: deeper ones stay .eml files


def _attached(part: Message, forwarded: str, depth: int) -> Iterator[tuple[Message, str]]:
    """The parts of `part` that are attachments, with the forwarded mail each came out of."""
    if part.get_content_type() in FORWARDED_TYPES:
        inner = _forwarded_message(part) if depth < MAX_FORWARD_DEPTH else None
        if inner is None:
            yield part, forwarded
        else:
            yield from _attached(inner, _describe(inner), depth + 1)
        return
    if part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                yield from _attached(sub, forwarded, depth)
        return
    named = part.get("Content-ID") is not None or part.get_filename() is not None
    if named or part.get_content_disposition() == "attachment" or part.get_content_type() in CSV_TYPES:
        unwrapped = _unwrapped(part) if _tnef_part(part) else []
        if not unwrapped:
            yield part, forwarded
        for file in unwrapped:
            yield file, WINMAIL + (f" in {forwarded}" if forwarded else "")


WINMAIL: Final = "Outlook's winmail.dat"  # where a file taken out of a TNEF wrapper came from


def _tnef_part(part: Message) -> bool:
    """A TNEF wrapper by its type or its (decoded, made safe) name: one test for the part
    `_attached` would open and the attachment `is_tnef` says is left unopened."""
    attachment = MailAttachment(part)
    name = safe_filename(attachment.filename, 0, attachment.content_type)
    return attachment.content_type.lower() in TNEF_TYPES or name.lower() == "winmail.dat"


def _unwrapped(part: Message) -> list[Message]:
    """The files of a TNEF wrapper (`tnef.files`) as attachment parts of their own; none when
    it cannot be read (it then stays one attachment, the stand-in saying what to change)."""
    payload = part.get_payload(decode=True)
    try:
        inner = tnef.files(payload if isinstance(payload, bytes) else b"")
    except tnef.NotReadable:
        return []
    parts: list[Message] = []
    for file in inner:
        made = MIMEApplication(file.data)
        made.add_header("Content-Disposition", "attachment", filename=file.name)
        parts.append(made)
    return parts


FORWARDED_TYPES: Final = frozenset({"message/rfc822", "message/global"})


def _forwarded_message(part: Message) -> Message | None:
    """The mail inside a message/rfc822 part, decoded when it was sent base64 or
    quoted-printable (Python's parser reads such a body as a message of no headers)."""
    payload = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], Message):
        return None
    if encoding not in ("base64", "quoted-printable"):
        return payload[0]
    try:
        encoded = payload[0].as_bytes()
        raw = binascii.a2b_base64(encoded) if encoding == "base64" else quopri.decodestring(encoded)
    except (binascii.Error, ValueError, LookupError):  # unreadable: it stays one .eml file
        return None
    return email.message_from_bytes(raw) if raw.strip() else None


def _describe(inner: Message) -> str:
    """Which forwarded mail a file came out of, for the run's note: its sender and subject."""

    def header(name: str) -> str:
        # raw, as raw UTF-8 (RFC 6532) comes as surrogate escapes that `get` would replace
        found = next((str(v) for k, v in inner.raw_items() if k.lower() == name.lower()), "")
        value = found.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        try:
            return str(email.header.make_header(email.header.decode_header(value)))
        except (ValueError, LookupError, email.errors.HeaderParseError):
            return value

    sender, subject = one_line(header("From"), 120) or "no sender", one_line(header("Subject"), 120)
    return f"the forwarded mail from {sender} {subject!r}"


def internaldate(value: Any) -> dt.datetime | None:
    """When the server received the message (its INTERNALDATE), in UTC: the file time of an
    attachment whose message has no usable Date header."""
    try:
        return dt.datetime.strptime(as_text(value).strip(), "%d-%b-%Y %H:%M:%S %z").astimezone(dt.UTC)
    except ValueError:
        return None


def one_line(value: str, limit: int = 300) -> str:
    """Header text (subject, sender) fit for a log line or a table cell: control characters
    become spaces, runs of space one, and it is cut to `limit` characters."""
    cleaned = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in value)
    return " ".join(cleaned.split())[:limit]


def message_date(message: MailMessage) -> dt.datetime | None:
    """The Date header in UTC (a date without zone is taken as UTC); None when missing or
    unreadable (imap-tools returns 1900-01-01 then)."""
    if not message.date_str:
        return None
    sent = message.date
    if sent.year <= 1900:
        return None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=dt.UTC)
    return sent.astimezone(dt.UTC)


def carries_body(message: MailMessage) -> bool:
    """Whether the FETCH answer a MailMessage was made of held the message's bytes (imap-tools
    takes them, with the UID, from the one literal of the answer; `_raw_uid_data` is that
    literal's line, empty when there was none: pinned by tests/unit/test_audit2_imap_body.py)."""
    return bool(getattr(message, "_raw_uid_data", b""))


def zip_member(name: str, payload: bytes) -> str | None:
    """The name of the single file in a ZIP attachment (what the parser unpacks), else None."""
    if not name.lower().endswith(".zip"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return members[0].filename if len(members) == 1 else None
