"""Pull transport for e-mail: the attachments of messages in an IMAP mailbox, as files.

A partner mails its files to a mailbox; each attachment whose (sanitised) file name matches
the connection's wildcard is one `RemoteFile`. The mailbox is the remote folder, a message's
UID plus the attachment's position is the remote path.

Settings (`connectbatch.transfer.specs.ImapSpec`, stored with the connection):

``security``   ``ssl`` (implicit TLS, port 993, the default), ``starttls`` (port 143, upgraded
               before login) or ``plain`` (no TLS: only to a loopback address, since the password
               would cross the network in clear).
``verify``     checks the server certificate (default); off accepts any certificate (a
               self-signed test or in-house server). ``ca_file`` trusts one PEM bundle.
folder         the connection's folder, the mailbox folder to read (default ``INBOX``).
``processed_flag`` / ``move_to``  what marks a message as done: a keyword (default
               ``$ConnectBatchProcessed``; ``\\Seen`` also works), or a folder to move it to
               (created if missing). Without ``move_to`` the connection's after-success
               action decides: archive moves to the archive folder, otherwise the flag.
``recipient``  only messages addressed to this address (To, Cc, Delivered-To or X-Original-To):
               how one mailbox serves many push connections by plus-addressing
               (``inbox+<connection>@domain``).

How a message is processed once, and only when everything in it has been taken:

* `list_files` searches on the server for messages not yet marked (``UNDELETED UNKEYWORD
  $ConnectBatchProcessed`` plus the recipient), so a mailbox with years of processed mail
  costs one SEARCH. It then fetches, in batches, only BODYSTRUCTURE and the address headers
  and downloads whole messages only when the structure shows a part that can be an
  attachment (plain-text and HTML-only mail is never downloaded). Attachments are found
  with imap-tools' own MIME walk on the downloaded message rather than by trusting the
  server's BODYSTRUCTURE names: servers and Python's e-mail package disagree on malformed
  MIME (an unquoted ``filename=This is a test.txt`` is ``This`` to Dovecot), and a file
  silently missed is worse than a message downloaded twice.
* Every listed attachment must be confirmed. The transport remembers, per message, which of
  its matching attachments are still open; `after_success` closes one and, when the last one
  is closed, marks the message (flag or move). A message whose attachments did not all
  succeed stays unmarked and is listed again by the next run, where the ledger
  (Message-ID + sha256) recognises what was already loaded. A caller that decides to skip a
  listed file (e.g. a duplicate) should still call `after_success` for it, or call
  `finish_message` to mark a message outright. Use one transport instance per run: the
  open set lives in memory (a fresh instance starts from the set recorded in
  ``extra["attachments"]``).
* Messages without a matching attachment are never touched, and nothing marks a message as
  read: bodies are fetched with ``BODY.PEEK``.

The connection's ``action``/``archive_folder`` (from the generic after-success setting) only
matter when ``processed`` is not set: ``archive`` with a folder means ``move:<folder>``;
anything else means ``flag``. Mail is never deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.message
import email.utils
import imaplib
import mimetypes
import re
import socket
import ssl
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

from imap_tools import (
    BaseMailBox,
    MailBox,
    MailBoxStartTls,
    MailBoxUnencrypted,
    MailMessage,
    UnexpectedCommandStatusError,
)

from connectbatch.errors import ConfigurationError, TransportError
from connectbatch.secrets import redact
from connectbatch.transfer.base import Endpoint, RemoteFile, Transport, matches, register
from connectbatch.transfer.specs import DEFAULT_IMAP_FLAG, ImapSpec, check_spec, mailbox_name

DEFAULT_FOLDER: Final = "INBOX"
DEFAULT_FLAG: Final = DEFAULT_IMAP_FLAG
# Address headers a message can carry the plus-address in (Delivered-To/X-Original-To are
# added by the delivering MTA, so Bcc'd mail is found too).
RECIPIENT_HEADERS: Final = ("To", "Cc", "Delivered-To", "X-Original-To")
# UIDs per FETCH of BODYSTRUCTURE + headers: small responses, few round trips.
SCREEN_BATCH: Final = 250
# Downloaded messages kept between list_files and fetch, so a small mailbox is downloaded
# once per run; bounded so a large one does not fill memory.
CACHE_BYTES: Final = 32 * 1024 * 1024
MAX_NAME_BYTES: Final = 255

_SYSTEM_FLAG_SEARCH: Final = {
    "\\seen": "UNSEEN",
    "\\answered": "UNANSWERED",
    "\\flagged": "UNFLAGGED",
    "\\draft": "UNDRAFT",
}


# ----------------------------------------------------------------------------- file names


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


# -------------------------------------------------------------------- IMAP response parsing


class _Atom(str):
    """An unquoted IMAP atom (a number, NIL, a key like ``BODY[HEADER.FIELDS (TO)]``);
    quoted strings and literals are `bytes`."""


_LPAREN: Final = object()
_RPAREN: Final = object()
_TOKEN = re.compile(
    rb"""\s*(?:
        (?P<lp>\() | (?P<rp>\)) |
        "(?P<quoted>(?:[^"\\]|\\.)*)" |
        (?P<literal>\{\d+\+?\}\s*$) |
        (?P<atom>[^\s()"\[\]{]+(?:\[[^\]]*\][^\s()"\[{]*)*)
    )""",
    re.VERBOSE | re.DOTALL,
)


def _tokens(data: list[Any]) -> Iterator[object]:
    """Tokens of imaplib's FETCH data: `bytes` lines and `(line, literal)` pairs, where the
    line ends with the ``{n}`` that announced the literal."""
    for item in data:
        if item is None:
            continue
        line, literal = (item[0], item[1]) if isinstance(item, tuple) else (item, None)
        pos = 0
        while pos < len(line):
            match = _TOKEN.match(line, pos)
            if match is None or match.end() == pos:
                if line[pos:].strip():
                    raise ValueError(f"cannot read IMAP response near {line[pos : pos + 40]!r}")
                break
            pos = match.end()
            if match.group("lp"):
                yield _LPAREN
            elif match.group("rp"):
                yield _RPAREN
            elif match.group("quoted") is not None:
                yield re.sub(rb"\\(.)", rb"\1", match.group("quoted"))
            elif match.group("atom"):
                yield _Atom(match.group("atom").decode("ascii", errors="replace"))
        if literal is not None:
            yield bytes(literal)


def _parse_fetch(data: list[Any]) -> list[dict[str, Any]]:
    """``* n FETCH (KEY value ...)`` responses as dicts with upper-case keys. Values are
    nested lists, `bytes` for strings and literals, `_Atom` for atoms and None for NIL."""
    tokens = list(_tokens(data))
    pos = 0

    def value() -> Any:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token is _LPAREN:
            items = []
            while tokens[pos] is not _RPAREN:
                items.append(value())
            pos += 1
            return items
        if token is _RPAREN:
            raise ValueError("unbalanced parenthesis in IMAP response")
        if isinstance(token, _Atom) and token.upper() == "NIL":
            return None
        return token

    responses: list[dict[str, Any]] = []
    while pos < len(tokens):
        number = tokens[pos]
        pos += 1
        if not (isinstance(number, _Atom) and number.isdigit()):
            continue  # stray data (e.g. an unsolicited response): skip it
        items = value()
        if not isinstance(items, list):
            continue
        responses.append({str(items[i]).upper(): items[i + 1] for i in range(0, len(items) - 1, 2)})
    return responses


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def may_have_attachments(body: Any) -> bool:
    """Whether a BODYSTRUCTURE can contain a part imap-tools counts as an attachment (one
    with a file name, a Content-ID, or a message/rfc822 type). Only a structure made
    entirely of plain text parts with no name, no Content-ID and no attachment disposition
    says no; anything else, including a structure we cannot read, says yes, so that the
    screen only ever saves downloads and never hides a file."""
    if not isinstance(body, list) or not body:
        return True
    if isinstance(body[0], list):  # multipart: the parts come first, then the subtype
        for part in body:
            if not isinstance(part, list):
                break
            if may_have_attachments(part):
                return True
        return False
    if len(body) < 7 or _text(body[0]).lower() != "text":
        return True
    params, body_id = body[2], body[3]
    if body_id is not None:
        return True
    if isinstance(params, list) and any("name" in _text(key).lower() for key in params[::2]):
        return True
    disposition = body[9] if len(body) > 9 else None  # text: lines, md5, disposition
    return (
        isinstance(disposition, list)
        and bool(disposition)
        and (_text(disposition[0]).lower() != "inline" or disposition[1:2] != [None])
    )


# ------------------------------------------------------------------------------ transport


@dataclass(frozen=True)
class _Settings:
    security: str
    verify: bool
    ca_file: str | None
    folder: str
    processed: str | None  # None: decided by the after-success action
    flag: str
    recipient: str | None


def _settings(endpoint: Endpoint) -> _Settings:
    """The endpoint's ImapSpec, checked once up front (services checked it already when it
    was saved; a spec built in code gets the same checks), so a mistake fails the connection
    test with a clear message instead of half-way through a run."""
    # No host: refusing plain IMAP to a remote host is the services' rule for partners'
    # connections; our own inbound mailbox is the operator's choice (engine.py).
    spec = check_spec(endpoint.spec_of(ImapSpec), None)
    assert isinstance(spec, ImapSpec)
    return _Settings(
        security=spec.security.value,
        verify=spec.verify,
        ca_file=spec.ca_file,
        folder=DEFAULT_FOLDER,
        processed=f"move:{spec.move_to}" if spec.move_to else None,
        flag=spec.processed_flag,
        recipient=spec.recipient,
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _internaldate(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(_text(value).strip(), "%d-%b-%Y %H:%M:%S %z").astimezone(dt.UTC)
    except ValueError:
        return None


def _one_line(text: str, limit: int = 300) -> str:
    cleaned = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return " ".join(cleaned.split())[:limit]


@register("email")
class ImapTransport(Transport):
    """Lists and fetches matching attachments from one IMAP mailbox (see the module doc).

    The connection is opened on first use and kept for the run; `close` logs out. Usable
    as a context manager."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._settings = _settings(endpoint)
        default_port = 993 if self._settings.security == "ssl" else 143
        self._port = endpoint.port or default_port
        self._where = f"IMAP {endpoint.host}:{self._port} ({self._settings.security})"
        self._box: BaseMailBox | None = None
        self._capabilities: set[str] = set()
        self._selected: str | None = None
        self._uidvalidity = ""
        # (folder, uid) -> attachment indexes listed but not yet confirmed by after_success
        self._open: dict[tuple[str, int], set[int]] = {}
        self._cache: OrderedDict[tuple[str, str, int], MailMessage] = OrderedDict()
        self._cache_sizes: dict[tuple[str, str, int], int] = {}

    # -- context manager ------------------------------------------------------------------


    # -- the Transport protocol -----------------------------------------------------------

    def list_files(self, folder: str, pattern: str) -> list[RemoteFile]:
        """One RemoteFile per attachment matching `pattern` in messages not yet marked
        processed, oldest message first. `folder` is the mailbox folder ('' = the
        configured one)."""
        name = mailbox_name(folder) or self._settings.folder
        box = self._select(name)
        uids = self._search(box)
        for key in [k for k in self._open if k[0] == name]:
            del self._open[key]
        found: list[RemoteFile] = []
        for start in range(0, len(uids), SCREEN_BATCH):
            for uid, arrived in self._screen(box, uids[start : start + SCREEN_BATCH]):
                found.extend(self._attachments(name, uid, arrived, pattern))
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
        if message is None:
            raise TransportError(f"{self._where}: message UID {uid} is no longer in folder {folder!r}")
        attachments = message.attachments
        if index >= len(attachments):
            raise TransportError(f"{self._where}: message UID {uid} has no attachment number {index + 1}")
        attachment = attachments[index]
        name = safe_filename(attachment.filename, index, attachment.content_type)
        if name != remote.name:
            raise TransportError(
                f"{self._where}: attachment {index + 1} of message UID {uid} is now "
                f"{name!r}, not {remote.name!r}"
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
        waiting = self._open.get(key)
        if waiting is None:  # listed by another instance: start from what it recorded
            recorded = remote.extra.get("attachments", "")
            waiting = {int(i) for i in recorded.split(",") if i.strip().isdigit()} or {index}
        waiting.discard(index)
        if waiting:
            self._open[key] = waiting
            return
        self._open.pop(key, None)
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
        self._drop_cached(name, number)
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
        if box is not None:
            try:
                box.logout()
            except Exception:  # the connection may already be gone
                with contextlib.suppress(Exception):
                    box.client.shutdown()

    # -- connection -----------------------------------------------------------------------

    def _fail(self, doing: str, exc: BaseException) -> TransportError:
        """A readable TransportError that never carries the password."""
        reason = _scrub(_reason(exc, self._endpoint.timeout), self._endpoint.password)
        return TransportError(f"{self._where}: {doing}: {reason}")

    def _raise(self, doing: str, exc: BaseException) -> NoReturn:
        error = self._fail(doing, exc)
        secret = self._endpoint.password
        text = f"{exc!s} {exc!r}"
        leaky = _scrub(text, secret) != text  # then keep the original out of tracebacks too
        if isinstance(exc, (OSError, imaplib.IMAP4.abort)):
            self._drop_connection()
        if leaky:
            raise error from None
        raise error from exc

    def _drop_connection(self) -> None:
        box, self._box = self._box, None
        self._selected = None
        if box is not None:
            with contextlib.suppress(Exception):
                box.client.shutdown()

    def _ssl_context(self) -> ssl.SSLContext:
        settings = self._settings
        try:
            context = ssl.create_default_context(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"e-mail ca_file {settings.ca_file!r} cannot be used: {exc}") from exc
        if not settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> BaseMailBox:
        endpoint, settings = self._endpoint, self._settings
        if not endpoint.username or endpoint.password is None:
            raise TransportError(f"{self._where}: no user name and password configured")
        box: BaseMailBox
        try:
            if settings.security == "ssl":
                box = MailBox(
                    endpoint.host,
                    self._port,
                    timeout=endpoint.timeout,
                    ssl_context=self._ssl_context(),
                )
            elif settings.security == "starttls":
                box = MailBoxStartTls(
                    endpoint.host,
                    self._port,
                    timeout=endpoint.timeout,
                    ssl_context=self._ssl_context(),
                )
            else:
                box = MailBoxUnencrypted(endpoint.host, self._port, timeout=endpoint.timeout)
        except ConfigurationError:
            raise
        except Exception as exc:
            self._raise("cannot connect", exc)
        try:
            user, password = endpoint.username, endpoint.password
            if user.isascii() and password.isascii():
                box.login(user, password, initial_folder=None)
            else:  # LOGIN is ASCII-only; AUTHENTICATE PLAIN carries UTF-8
                box.login_utf8(user, password, initial_folder=None)
        except Exception as exc:
            with contextlib.suppress(Exception):
                box.client.shutdown()
            self._raise(f"login as {endpoint.username!r} failed", exc)
        # imaplib keeps the capabilities from before login; servers add MOVE, UIDPLUS, ...
        # once authenticated, so ask again.
        try:
            typ, data = box.client.capability()
        except Exception as exc:
            self._raise("CAPABILITY failed", exc)
        words = _text(data[0]).upper().split() if typ == "OK" and data else []
        self._capabilities = set(words) or {c.upper() for c in box.client.capabilities}
        return box

    def _select(self, folder: str) -> BaseMailBox:
        if self._box is None:
            self._box = self._connect()
            self._selected = None
        box = self._box
        if self._selected != folder:
            self._selected = None  # a failed SELECT leaves no folder selected
            try:
                box.folder.set(folder)
                _, data = box.client.response("UIDVALIDITY")
            except UnexpectedCommandStatusError as exc:
                raise self._fail(f"cannot open folder {folder!r}", exc) from exc
            except Exception as exc:
                self._raise(f"cannot open folder {folder!r}", exc)
            self._selected = folder
            self._uidvalidity = _text(data[-1]) if data and data[-1] is not None else ""
        return box

    def _command(self, box: BaseMailBox, doing: str, *args: Any) -> list[Any]:
        """``UID <args>`` with errors turned into TransportError."""
        try:
            typ, data = box.client.uid(*args)
        except Exception as exc:
            self._raise(doing, exc)
        if typ != "OK":
            said = " ".join(_text(d) for d in data if isinstance(d, bytes))
            raise TransportError(
                f"{self._where}: {doing}: server said {typ} {_scrub(said, self._endpoint.password)}"
            )
        return list(data)

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
        return sorted(int(x) for x in _text(data[0] if data else b"").split() if x.isdigit())

    def _screen(self, box: BaseMailBox, uids: list[int]) -> Iterator[tuple[int, dt.datetime | None]]:
        """From one batch of UIDs, those worth downloading: addressed to the recipient and
        with a structure that can hold an attachment. Yields (uid, arrival time)."""
        headers = " ".join(h.upper() for h in RECIPIENT_HEADERS)
        items = f"(UID INTERNALDATE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS ({headers})])"
        data = self._command(
            box, "reading message structure failed", "FETCH", ",".join(map(str, uids)), items
        )
        try:
            responses = _parse_fetch(data)
        except (ValueError, IndexError) as exc:
            raise TransportError(f"{self._where}: unreadable FETCH response: {exc}") from exc
        # unsolicited FETCH responses (flag changes by another client) carry no UID: skip them
        with_uid = [r for r in responses if _text(r.get("UID")).isdigit()]
        for response in sorted(with_uid, key=lambda r: int(_text(r["UID"]))):
            uid_text = _text(response["UID"])
            header_block = next((v for k, v in response.items() if k.startswith("BODY[HEADER.FIELDS")), b"")
            if not self._addressed(header_block if isinstance(header_block, bytes) else b""):
                continue
            if not may_have_attachments(response.get("BODYSTRUCTURE")):
                continue
            yield int(uid_text), _internaldate(response.get("INTERNALDATE"))

    def _addressed(self, header_block: bytes) -> bool:
        """Exact (case-insensitive) match of the recipient against the address headers."""
        wanted = self._settings.recipient
        if wanted is None:
            return True
        parsed = email.message_from_bytes(header_block)
        values = [str(v) for h in RECIPIENT_HEADERS for v in parsed.get_all(h, [])]
        addresses = {addr.strip().lower() for _, addr in email.utils.getaddresses(values)}
        return wanted.lower() in addresses

    def _attachments(
        self, folder: str, uid: int, arrived: dt.datetime | None, pattern: str
    ) -> list[RemoteFile]:
        message = self._message(folder, uid)
        if message is None:  # expunged between SEARCH and FETCH
            return []
        picked: list[tuple[int, str, int, str]] = []
        for index, attachment in enumerate(message.attachments):
            name = safe_filename(attachment.filename, index, attachment.content_type)
            if matches(name, pattern):
                picked.append((index, name, attachment.size, attachment.content_type))
        if not picked:
            self._drop_cached(folder, uid)
            return []
        self._open[(folder, uid)] = {index for index, *_ in picked}
        sent = _message_date(message) or arrived
        message_ids: tuple[str, ...] = message.headers.get("message-id") or ()  # type: ignore[no-untyped-call]
        extra = {
            "message_id": _one_line(message_ids[0]) if message_ids else "",
            "subject": _one_line(message.subject),
            "from": _one_line(message.from_),
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
                extra={**extra, "index": str(index), "content_type": content_type},
            )
            for index, name, size, content_type in picked
        ]

    # -- messages -------------------------------------------------------------------------

    def _message(self, folder: str, uid: int) -> MailMessage | None:
        """The whole message, from the cache or downloaded with BODY.PEEK (never marks it
        read). None when the UID no longer exists."""
        key = (folder, self._uidvalidity, uid)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        box = self._select(folder)
        try:
            found = list(box.fetch(uid_list=[str(uid)], mark_seen=False, bulk=False))
        except Exception as exc:
            self._raise(f"downloading message UID {uid} failed", exc)
        if not found:
            return None
        message = found[0]
        self._cache[key] = message
        self._cache_sizes[key] = message.size_rfc822 or 0
        while len(self._cache) > 1 and sum(self._cache_sizes.values()) > CACHE_BYTES:
            old, _ = self._cache.popitem(last=False)
            self._cache_sizes.pop(old, None)
        return message

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


def _message_date(message: MailMessage) -> dt.datetime | None:
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


def _scrub(text: str, secret: str | None) -> str:
    return redact(text, secret)


def _reason(exc: BaseException, timeout: float) -> str:
    """What went wrong, in words for the person who configured the mailbox."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the server's TLS certificate is not trusted ({exc.verify_message}); give its "
            "CA in ca_file, or set verify=false for a server you control"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, UnexpectedCommandStatusError):
        status, data = exc.command_result[0], exc.command_result[1]
        detail = " ".join(_text(d) for d in (data or []) if isinstance(d, (bytes, str)))
        return f"server said {_text(status)} {detail}".strip()
    if isinstance(exc, imaplib.IMAP4.abort):
        return f"connection lost ({exc})"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
