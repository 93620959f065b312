"""Stand-ins: the `RemoteFile`s the e-mail pull makes for messages it takes no file from, so
that a run records them once and then marks them processed (flag or move, `after_success`).

* `refused`: a sender not on the allowed senders; `unreadable`: a mail Python cannot parse.
  Listed with ``extra["skip"]``: the run records it as skipped in its ledger, never answers it.
* `unmatched`: a message that brought nothing matching, or (``extra[TOO_LARGE]``) one too large
  to download (`size`). Kept in the transport's ``unmatched``: the run records it in the
  connection's history and may answer the sender (`pipeline.history`).

Header text is partner-controlled: every value is cut to one clean line (`one_line`).
"""

from __future__ import annotations

import datetime as dt
import email
import email.errors
import email.header

from connectbatch.pipeline.history import REPORT, TNEF, TOO_LARGE, UNMATCHED, auto_generated, reply_address
from connectbatch.transfer.base import RemoteFile
from connectbatch.transfer.pull.imap.message import one_line


def refused(folder: str, uidvalidity: str, uid: int, arrived: dt.datetime | None, sender: str) -> RemoteFile:
    """A message whose sender is not allowed, with `extra["skip"]` as the reason."""
    shown = one_line(sender)
    extra = {"skip": f"sender {shown} is not on the connection's allowed senders", "from": shown}
    return _standin(folder, uidvalidity, uid, arrived, f"message {uid} from {shown}", "refused", extra)


def unreadable(
    folder: str, uidvalidity: str, uid: int, arrived: dt.datetime | None, headers: bytes, why: str
) -> RemoteFile:
    """A message that cannot be read at all (`why`), with `extra["skip"]`: recorded once in the
    run's ledger, then marked processed, so it no longer fails every pull of the mailbox."""
    sender = one_line(str(email.message_from_bytes(headers).get("From") or "")) or "no sender"
    extra = {"skip": f"this mail cannot be read: {why}; ask the sender to send the file in a plain mail"}
    return _standin(folder, uidvalidity, uid, arrived, f"message {uid} from {sender}", "unreadable", extra)


def unmatched(
    folder: str,
    uidvalidity: str,
    uid: int,
    arrived: dt.datetime | None,
    headers: bytes,
    names: list[str],
    *,
    too_large: str = "",
    tnef: bool = False,
    report: str = "",
) -> RemoteFile:
    """A message that brought nothing matching (`names`: its attachments, maybe none; `tnef`:
    one of them is Outlook's winmail.dat), or, with `too_large` (the reason,
    `size.too_large_reason`), one refused for its size, or, with `report` (why,
    `history.delivery_report`), a bounce or read receipt, whose attachments are not taken."""
    parsed = email.message_from_bytes(headers)
    message_id = one_line(str(parsed.get("Message-ID") or ""))
    sender = one_line(str(parsed.get("From") or ""))
    extra = {
        UNMATCHED: "1",
        "names": "\n".join(one_line(n) for n in names),
        "from": sender,
        "reply_to": reply_address(headers) or "",
        "auto": auto_generated(headers) or "",
        "subject": one_line(_decoded(parsed.get("Subject"))),
        "message_id": message_id,
        "where": f"{folder}/{uidvalidity}/{uid}",
    }
    if too_large:
        extra[TOO_LARGE] = too_large
    if tnef:
        extra[TNEF] = "1"
    if report:
        extra[REPORT] = report
        extra["auto"] = extra["auto"] or report  # never answered
    name = f"message {uid} from {sender or 'no sender'}"
    return _standin(folder, uidvalidity, uid, arrived, name, "unmatched", extra)


def _standin(
    folder: str, uidvalidity: str, uid: int, arrived: dt.datetime | None, name: str, kind: str,
    extra: dict[str, str],
) -> RemoteFile:  # fmt: skip
    """A stand-in for message `uid` itself (no file of it is taken): what marking it after
    the run needs (folder, uid, uidvalidity, no attachments) added to `extra`."""
    return RemoteFile(
        name=name, path=f"{folder}/{uid}/0/{kind}", size=0, mtime=arrived, ref=f"{uid}:0",
        extra={**extra, "folder": folder, "uid": str(uid), "uidvalidity": uidvalidity, "attachments": "0"},
    )  # fmt: skip


def _decoded(value: object) -> str:
    """A header value with RFC 2047 words decoded (a subject in UTF-8 reads as such)."""
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return str(value)
