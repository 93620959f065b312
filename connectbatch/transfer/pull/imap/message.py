"""What the IMAP pull reads out of a downloaded message: safe attachment file names, the dates
a file is given, and header text cut to one line."""

from __future__ import annotations

import datetime as dt
import mimetypes
import unicodedata
from typing import Any, Final

from imap_tools import MailAttachment, MailMessage

from connectbatch.transfer.pull.imap.response import as_text

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


def attachments(message: MailMessage) -> list[MailAttachment]:
    """The message's attachments, in order: imap-tools' (parts with a file name or a
    Content-ID, forwarded messages) plus the parts it leaves out that are attachments all the
    same, `Content-Disposition: attachment` with no name: a CSV some mailers and scripts attach
    nameless, which was lost (the history said the mail had no attachment). It gets
    `attachment-<n>.csv` from `safe_filename`. The listing and the download both count from
    here, so an attachment's number is the same in both."""
    found = []
    for part in message.obj.walk():
        if part.get_content_maintype() == "multipart":  # containers
            continue
        named = part.get("Content-ID") is not None or part.get_filename() is not None
        forwarded = part.get_content_type() == "message/rfc822"
        if named or forwarded or part.get_content_disposition() == "attachment":
            found.append(MailAttachment(part))
    return found


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
