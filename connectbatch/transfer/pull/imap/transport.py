"""The e-mail pull transport, registered as method ``"email"``: the attachments of messages in
an IMAP mailbox, as files (the package docstring says how a message is processed once).

Listing searches and screens on the server, downloads only messages that can hold an
attachment, and marks a message (flag or move) only when all its listed attachments are done.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final

from imap_tools import BaseMailBox, MailMessage, UnexpectedCommandStatusError

from connectbatch.errors import (
    ConfigurationError,
    RemoteFileDamagedError,
    RemoteFileRefusedError,
    RemoteFileTooLargeError,
    TransportError,
)
from connectbatch.pipeline.history import delivery_report
from connectbatch.transfer.base import Endpoint, RemoteFile, Transport, register, too_large
from connectbatch.transfer.naming import matches
from connectbatch.transfer.pull.imap import literals, standins
from connectbatch.transfer.pull.imap import size as message_size
from connectbatch.transfer.pull.imap.message import attachments as message_attachments
from connectbatch.transfer.pull.imap.message import (
    carries_body,
    damage,
    is_tnef,
    message_date,
    one_line,
    zip_member,
)
from connectbatch.transfer.pull.imap.response import as_number, as_text
from connectbatch.transfer.pull.imap.screen import MessageScreen, Screened, Verdict
from connectbatch.transfer.pull.imap.shared import SharedCopies
from connectbatch.transfer.specs import mailbox_name

log = logging.getLogger("connectbatch.transfer.pull.imap")

# UIDs per screening FETCH (size, BODYSTRUCTURE, headers): small responses, few round trips.
SCREEN_BATCH: Final = 250
# Downloaded messages kept between list_files and fetch, so a small mailbox is downloaded
# once per run; bounded so a large one does not fill memory (room is made before a download,
# so a large message never arrives while others still fill the cache).
CACHE_BYTES: Final = 32 * 1024 * 1024

_SYSTEM_FLAG_SEARCH: Final = {
    "\\seen": "UNSEEN",
    "\\answered": "UNANSWERED",
    "\\flagged": "UNFLAGGED",
    "\\draft": "UNDRAFT",
}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Unreadable(TransportError):
    """One mail Python cannot parse (a MIME tree nested a thousand levels deep): it costs that
    mail only, never the run or the mail beside it."""


class LargerThanTold(RemoteFileTooLargeError):
    """A message whose download the server began with more bytes than the largest mail we
    take, having told a smaller size (`literals`): not read, settled as too large."""

    def __init__(self, where: str, folder: str, uid: int, told: str) -> None:
        super().__init__(f"{where}: message UID {uid} in {folder!r}: {told}")
        self.told = told  # `size.too_large_reason`: the wording of a mail refused for its size


@register("email")
class ImapTransport(MessageScreen, Transport):
    """Lists and fetches matching attachments from one IMAP mailbox (see the module doc).

    The connection is opened on first use and kept for the run; `close` logs out. Usable
    as a context manager."""

    settles_refused = True  # a mail never changes: one whose file is refused is marked once

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        # (folder, uid) -> attachment indexes listed but not yet confirmed by after_success
        self._open: dict[tuple[str, int], set[int]] = {}
        # (folder, uid) -> the action and folder an attachment taken from it asked for, so a
        # message is archived when one of its files was taken, whichever was confirmed last
        # (a refused one is confirmed with "leave")
        self._taken: dict[tuple[str, int], tuple[str, str | None]] = {}
        self._cache: OrderedDict[tuple[str, str, int], MailMessage] = OrderedDict()
        self._cache_sizes: dict[tuple[str, str, int], int] = {}
        # RFC822.SIZE of messages screened for download, by the cache's key (a UID's message
        # never changes): a download checks it without asking the server again
        self._sizes: dict[tuple[str, str, int], int | None] = {}
        # Messages the last `list_files` took nothing from (no attachment, none matching, too
        # large to download), as stand-ins (`standins`): not files, so not listed; a run records
        # them in the connection's history (`pipeline.history`) and confirms them with
        # `after_success` so they are marked once.
        self.unmatched: list[RemoteFile] = []
        # A mailbox whose copies several recipients share (`shared`): set by whoever opens the
        # transport for our inbound mailbox; None marks a message when this recipient is done.
        self.shared: SharedCopies | None = None
        self._named: dict[tuple[str, int], frozenset[str]] = {}  # (folder, uid) -> addressees

    # -- the Transport protocol -----------------------------------------------------------

    def list_files(self, folder: str, pattern: str) -> list[RemoteFile]:
        """One RemoteFile per attachment matching `pattern` in messages not yet marked
        processed, oldest message first. `folder` is the mailbox folder ('' = the
        configured one)."""
        name = mailbox_name(folder) or self._settings.folder
        box = self._select(name)
        uids = self._search(box)
        recipient = self._settings.recipient
        if self.shared is not None and recipient is not None:  # copies this recipient finished
            try:
                done = self.shared.taken(self._mailbox_key(name), self._uidvalidity, recipient.lower())
            except Exception:  # the records unreadable now: listed again, the ledger settles them
                log.warning("shared mail records unreadable; listing every copy", exc_info=True)
                done = set()
            uids = [uid for uid in uids if uid not in done]
        for key in [k for k in self._open if k[0] == name]:
            del self._open[key]
            self._taken.pop(key, None)
        self._named = {k: v for k, v in self._named.items() if k[0] != name}
        found: list[RemoteFile] = []
        self.unmatched = []
        for start in range(0, len(uids), SCREEN_BATCH):
            # selected again: a message larger than it said drops the connection (`_message`)
            for screened in self._screen(self._select(name), uids[start : start + SCREEN_BATCH]):
                found.extend(self._listed(name, screened, pattern))
        return found

    def fetch(self, remote: RemoteFile, target: Path) -> None:
        """Write one attachment's decoded bytes to `target`."""
        folder, uid, index = self._locate(remote)
        self._select(folder)
        listed_validity = remote.extra.get("uidvalidity")
        if listed_validity and listed_validity != self._uidvalidity:
            raise TransportError(
                f"{self._where}: folder {folder!r} was rebuilt by the server since it was "
                "listed (UIDVALIDITY changed); the next run lists it again"
            )
        message = self._message(folder, uid)
        if message is None:  # expunged since the listing: that file only, as a deleted file
            raise RemoteFileRefusedError(
                f"{self._where}: message UID {uid} is no longer in folder {folder!r} (deleted or "
                "moved since the mailbox was listed)"
            )
        attachments = message_attachments(message)
        if index >= len(attachments):
            raise TransportError(f"{self._where}: message UID {uid} has no attachment number {index + 1}")
        attachment, name = attachments[index].part, attachments[index].name
        if name != remote.name:
            raise TransportError(
                f"{self._where}: attachment {index + 1} of message UID {uid} is now "
                f"{name!r}, not {remote.name!r}"
            )
        limit = self._endpoint.max_bytes
        if limit is not None and len(attachment.payload) > limit:
            raise too_large(self._where, remote.name, limit)
        damaged = damage(message, attachment)
        if damaged:
            raise RemoteFileDamagedError(
                f"{self._where}: attachment {remote.name!r} of message UID {uid} arrived damaged "
                f"({', '.join(damaged)}: the mail was cut off or altered on its way)"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(attachment.payload)
        except OSError as exc:
            raise TransportError(f"cannot write {remote.name!r} to {target}: {exc}") from exc

    def after_success(self, remote: RemoteFile, action: str, archive_folder: str | None) -> None:
        """Confirm one listed attachment; mark its message processed when it was the last
        open one. See the module doc for how `action` and `archive_folder` are used."""
        folder, uid, index = self._locate(remote)
        key = (folder, uid)
        if str(action) != "leave":
            self._taken.setdefault(key, (str(action), archive_folder))
        waiting = self._open.get(key)
        if waiting is None:  # listed by another instance: start from what it recorded
            recorded = remote.extra.get("attachments", "")
            waiting = {int(i) for i in recorded.split(",") if i.strip().isdigit()} or {index}
        waiting.discard(index)
        if waiting:
            self._open[key] = waiting
            return
        self._open.pop(key, None)
        action, archive_folder = self._taken.pop(key, (str(action), archive_folder))
        self.finish_message(uid, folder, action=action, archive_folder=archive_folder)

    def finish_message(
        self,
        uid: int | str,
        folder: str | None = None,
        *,
        action: str = "leave",
        archive_folder: str | None = None,
    ) -> None:
        """Mark one message processed now (flag it, or move it to the processed folder),
        whatever is still open in it."""
        name = mailbox_name(folder or "") or self._settings.folder
        number = int(uid)
        box = self._select(name)
        self._open.pop((name, number), None)
        self._taken.pop((name, number), None)
        self._drop_cached(name, number)
        if not self._last_to_take(box, name, number):
            return
        mode = self._settings.processed
        if mode is None:
            target = mailbox_name(archive_folder or "") if action == "archive" else ""
            mode = f"move:{target}" if target else "flag"
        if mode == "flag":
            self._store_flag(box, number, name)
        else:
            self._move(box, number, name, mode[5:])

    def close(self) -> None:
        """Log out (errors on the way out do not matter any more) and forget the cache."""
        box, self._box = self._box, None
        self._selected = None
        self._cache.clear()
        self._cache_sizes.clear()
        self._sizes.clear()
        if box is not None:
            try:
                box.logout()
            except Exception:  # the connection may already be gone
                with contextlib.suppress(Exception):
                    box.client.shutdown()

    def _last_to_take(self, box: BaseMailBox, folder: str, uid: int) -> bool:
        """Whether a finished message is to be marked now: always, unless its copy is shared
        (`shared`) and an addressed recipient other than ours has not taken it yet."""
        recipient = self._settings.recipient
        if self.shared is None or recipient is None:
            return True
        named = self._named.pop((folder, uid), None)
        if named is None:  # listed by another instance: read its addresses again
            screened = self._screen(box, [uid])
            named = self._addressees(screened[0].headers) if screened else frozenset()
        key = self._mailbox_key(folder)
        try:
            return self.shared.take(
                key, self._uidvalidity, uid, recipient.lower(), named | {recipient.lower()}
            )
        except Exception:  # the files are in: the copy stays unmarked, a later poll settles it
            log.warning("could not record message UID %s as taken; it stays unmarked", uid, exc_info=True)
            return False

    def _mailbox_key(self, folder: str) -> str:
        return f"{self._endpoint.username or ''}@{self._endpoint.host}:{self._port}/{folder}"

    # -- listing --------------------------------------------------------------------------

    def _search(self, box: BaseMailBox) -> list[int]:
        """UIDs of messages not yet processed (and addressed to the recipient), by SEARCH
        on the server: nothing is downloaded for processed mail."""
        settings = self._settings
        flag = settings.flag
        criteria = ["UNDELETED", _SYSTEM_FLAG_SEARCH.get(flag.lower(), f"UNKEYWORD {flag}")]
        recipient = settings.recipient
        if recipient is not None and recipient.isascii():
            # a substring match on the server; the exact match is made on the headers
            q = _quote(recipient)
            criteria.append(f"OR OR OR TO {q} CC {q} HEADER Delivered-To {q} HEADER X-Original-To {q}")
        data = self._command(box, "search failed", "SEARCH", " ".join(criteria))
        found = (as_number(x) for x in as_text(data[0] if data else b"").split())
        return sorted(uid for uid in found if uid is not None)

    def _listed(self, folder: str, screened: Screened, pattern: str) -> list[RemoteFile]:
        """What one screened message adds to the listing: its matching attachments, or a
        stand-in (`standins`) for a message that brings none."""
        uid, arrived, validity = screened.uid, screened.arrived, self._uidvalidity
        self._named[(folder, uid)] = self._addressees(screened.headers)
        if screened.verdict is Verdict.DOWNLOAD:
            self._sizes[(folder, validity, uid)] = screened.size
            return self._attachments(folder, uid, arrived, screened.headers, pattern)
        self._open[(folder, uid)] = {0}
        if screened.verdict is Verdict.SENDER_REFUSED:
            return [standins.refused(folder, validity, uid, arrived, screened.sender)]
        reason = ""
        if screened.verdict is Verdict.TOO_LARGE:
            assert screened.size is not None and self._endpoint.max_bytes is not None
            reason = message_size.too_large_reason(screened.size, self._endpoint.max_bytes)
        return self._nothing_taken(folder, uid, arrived, screened.headers, [], too_large=reason)

    def _nothing_taken(
        self, folder: str, uid: int, arrived: dt.datetime | None, headers: bytes, seen: list[str],
        **why: Any,
    ) -> list[RemoteFile]:  # fmt: skip
        """A message no file is taken from, recorded (and maybe answered) by its stand-in;
        `why`: `standins.unmatched`'s keywords (too large, winmail.dat, a delivery report)."""
        self._drop_cached(folder, uid)
        self._open[(folder, uid)] = {0}
        found = standins.unmatched(folder, self._uidvalidity, uid, arrived, headers, seen, **why)
        self.unmatched.append(found)
        return []

    def _attachments(
        self, folder: str, uid: int, arrived: dt.datetime | None, headers: bytes, pattern: str
    ) -> list[RemoteFile]:
        try:
            message = self._message(folder, uid)
        except Unreadable as exc:  # that mail only: recorded once, marked processed
            self._open[(folder, uid)] = {0}
            return [standins.unreadable(folder, self._uidvalidity, uid, arrived, headers, str(exc))]
        except LargerThanTold as exc:  # recorded and answered as if screened too large
            return self._nothing_taken(folder, uid, arrived, headers, [], too_large=exc.told)
        if message is None:  # expunged between SEARCH and FETCH
            return []
        report = delivery_report(headers, message.obj.get_content_type())
        if report is not None:  # our own mail coming back, not a file: a mail loop (history)
            return self._nothing_taken(folder, uid, arrived, headers, [], report=report)
        picked: list[tuple[int, str, int, str, str]] = []
        seen: list[str] = []
        found_all = message_attachments(message)
        for index, found in enumerate(found_all):
            name, attachment = found.name, found.part
            seen.append(name)
            if not is_tnef(found) and matches(name, pattern, inner=zip_member(name, attachment.payload)):
                picked.append((index, name, attachment.size, attachment.content_type, found.forwarded))
        if not picked:
            tnef = any(is_tnef(found) for found in found_all)
            return self._nothing_taken(folder, uid, arrived, headers, seen, tnef=tnef)
        self._open[(folder, uid)] = {index for index, *_ in picked}
        sent = message_date(message) or arrived
        message_ids: tuple[str, ...] = message.headers.get("message-id") or ()  # type: ignore[no-untyped-call]
        extra = {
            "message_id": one_line(message_ids[0]) if message_ids else "",
            "subject": one_line(message.subject),
            "from": one_line(message.from_),
            "date": sent.isoformat() if sent else "",
            "folder": folder,
            "uid": str(uid),
            "uidvalidity": self._uidvalidity,
            "attachments": ",".join(str(index) for index, *_ in picked),
        }
        return [
            RemoteFile(
                name=name,
                path=f"{folder}/{uid}/{index + 1}/{name}",
                size=size,
                mtime=sent,
                ref=f"{uid}:{index}",
                extra={**extra, "index": str(index), "content_type": content_type, "forwarded": forwarded},
            )
            for index, name, size, content_type, forwarded in picked
        ]

    # -- messages -------------------------------------------------------------------------

    def _message(self, folder: str, uid: int) -> MailMessage | None:
        """The whole message, from the cache or downloaded with BODY.PEEK (never marks it
        read). None when the UID no longer exists. A message over `size.largest_message` is
        never downloaded (RemoteFileTooLargeError): its size comes from the screen, or is
        asked for first when another instance listed it."""
        key = (folder, self._uidvalidity, uid)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        box = self._select(folder)
        if key in self._sizes:
            size = self._sizes[key]
        else:
            exists, size = self._server_size(box, uid)
            if not exists:
                return None
        limit = self._endpoint.max_bytes
        if limit is not None and message_size.too_large(size, limit):
            assert size is not None
            reason = message_size.too_large_reason(size, limit)
            raise RemoteFileTooLargeError(f"{self._where}: message UID {uid} in {folder!r}: {reason}")
        self._make_room(size)
        try:
            found = list(box.fetch(uid_list=[str(uid)], mark_seen=False, bulk=False))
        except RecursionError as exc:  # Python's parser recurses once per nested part
            raise Unreadable(f"its parts are nested too deeply to read (message UID {uid})") from exc
        except Exception as exc:
            told = literals.oversized(exc)  # it told a smaller RFC822.SIZE (`literals`)
            if told is None:
                self._raise(f"downloading message UID {uid} failed", exc)
            self._drop_connection()  # the literal is still coming: out of step
            assert limit is not None
            raise LargerThanTold(
                self._where, folder, uid, message_size.too_large_reason(told.size, limit)
            ) from exc
        # Only an answer carrying the message's bytes is the message: a UID expunged meanwhile
        # gets none, and what imap-tools then makes of an unsolicited FETCH (another session's
        # flag change) is an empty mail, listed as one without attachment, or failing the run.
        found = [m for m in found if m.uid == str(uid) and carries_body(m)]
        if not found:
            return None
        message = found[0]
        self._cache[key] = message
        self._cache_sizes[key] = message.size_rfc822 or size or 0
        return message

    def _make_room(self, size: int | None) -> None:
        """Evict the oldest cached messages until one of `size` bytes fits in CACHE_BYTES
        (all of them for a message of unknown size or larger than that), so at most one large
        message is held at a time."""
        incoming = CACHE_BYTES if size is None else size
        while self._cache and sum(self._cache_sizes.values()) + incoming > CACHE_BYTES:
            old, _ = self._cache.popitem(last=False)
            self._cache_sizes.pop(old, None)

    def _drop_cached(self, folder: str, uid: int) -> None:
        for key in [k for k in self._cache if k[0] == folder and k[2] == uid]:
            del self._cache[key]
            self._cache_sizes.pop(key, None)

    def _locate(self, remote: RemoteFile) -> tuple[str, int, int]:
        folder = mailbox_name(remote.extra.get("folder", "")) or self._settings.folder
        uid_text, _, index_text = remote.ref.partition(":")
        if not (uid_text.isdigit() and index_text.isdigit()):
            raise TransportError(f"not an e-mail attachment reference: {remote.ref!r}")
        return folder, int(uid_text), int(index_text)

    # -- marking processed ----------------------------------------------------------------

    def _store_flag(self, box: BaseMailBox, uid: int, folder: str) -> None:
        flag = self._settings.flag
        data = self._command(
            box, f"flagging message UID {uid} failed", "STORE", str(uid), "+FLAGS", f"({flag})"
        )
        ours = [
            item
            for item in data
            if isinstance(item, bytes) and re.search(rb"\bUID %d\b" % uid, item) and b"FLAGS" in item
        ]
        flags = {f.decode(errors="replace").lower() for item in ours for f in imaplib.ParseFlags(item)}
        if not ours:
            raise TransportError(f"{self._where}: message UID {uid} is no longer in folder {folder!r}")
        if flag.lower() not in flags:
            raise TransportError(
                f"{self._where}: the server did not keep the flag {flag} on message UID {uid} "
                "(it may not allow new keywords): set processed_flag=\\Seen or "
                "processed=move:<folder>"
            )

    def _move(self, box: BaseMailBox, uid: int, folder: str, target: str) -> None:
        if target == folder:
            raise ConfigurationError(f"the processed folder {target!r} is the folder being read")
        try:
            if not box.folder.exists(target):
                try:
                    box.folder.create(target)
                except UnexpectedCommandStatusError:
                    if not box.folder.exists(target):  # not a race with another run
                        raise
        except Exception as exc:
            self._raise(f"cannot create folder {target!r}", exc)
        if "MOVE" in self._capabilities:
            self._command(
                box,
                f"moving message UID {uid} to {target!r} failed",
                "MOVE",
                str(uid),
                _encode_folder(target),
            )
            return
        # No MOVE: copy, then mark the original deleted and processed (so it is never listed
        # again even where it cannot be expunged), and expunge only that UID when we can.
        self._command(
            box,
            f"copying message UID {uid} to {target!r} failed",
            "COPY",
            str(uid),
            _encode_folder(target),
        )
        self._command(
            box,
            f"removing message UID {uid} failed",
            "STORE",
            str(uid),
            "+FLAGS.SILENT",
            f"(\\Deleted {self._settings.flag})",
        )
        if "UIDPLUS" in self._capabilities:
            self._command(box, f"expunging message UID {uid} failed", "EXPUNGE", str(uid))


def _encode_folder(folder: str) -> bytes:
    from imap_tools.utils import encode_folder  # modified UTF-7 + quoting, as imap-tools does

    return encode_folder(folder)
