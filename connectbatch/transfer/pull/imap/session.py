"""One logged-in IMAP session for the e-mail pull: the settings it reads, the connection
(TLS, login, capabilities), selecting a folder, UID commands, and errors in words.

`ImapTransport` builds on it; nothing here knows about attachments or marking.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from imap_tools import (
    BaseMailBox,
    MailBox,
    MailBoxStartTls,
    MailBoxUnencrypted,
    UnexpectedCommandStatusError,
)

from connectbatch.errors import ConfigurationError, TransportError
from connectbatch.secrets import redact
from connectbatch.transfer.base import Endpoint
from connectbatch.transfer.errors import describe_network_error
from connectbatch.transfer.pull import stopping
from connectbatch.transfer.pull.imap import literals
from connectbatch.transfer.pull.imap.response import as_text
from connectbatch.transfer.specs import DEFAULT_IMAP_FLAG, ImapSpec, check_spec

DEFAULT_FOLDER: Final = "INBOX"
DEFAULT_FLAG: Final = DEFAULT_IMAP_FLAG


@dataclass(frozen=True)
class _Settings:
    security: str
    verify: bool
    ca_file: str | None
    folder: str
    processed: str | None  # None: decided by the after-success action
    flag: str
    recipient: str | None
    allowed_senders: tuple[str, ...] = ()


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
        allowed_senders=spec.allowed_senders,
    )


class ImapSession:
    """The connection half of `ImapTransport`: opened on first use, kept for the run, dropped
    after a network error so the next call logs in afresh."""

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

    def _fail(self, doing: str, exc: BaseException) -> TransportError:
        """A readable TransportError that never carries the password."""
        reason = _scrub(self._reason(exc), self._endpoint.password)
        return TransportError(f"{self._where}: {doing}: {reason}")

    def _reason(self, exc: BaseException) -> str:
        """What went wrong, in words for the person who configured the mailbox: the server's
        answer, or the network's (`transfer.errors`)."""
        if isinstance(exc, UnexpectedCommandStatusError):
            status, data = exc.command_result[0], exc.command_result[1]
            detail = " ".join(as_text(d) for d in (data or []) if isinstance(d, (bytes, str)))
            return f"server said {as_text(status)} {detail}".strip()
        if isinstance(exc, imaplib.IMAP4.abort):
            return f"connection lost ({exc})"
        endpoint = self._endpoint
        described = describe_network_error(
            exc, service="IMAP", host=endpoint.host, port=self._port, timeout=endpoint.timeout
        )
        return described or str(exc) or type(exc).__name__

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
        return stopping.stoppable(context)

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
        literals.bound(box.client, endpoint.max_bytes)  # the size a server tells is not believed blindly
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
        words = as_text(data[0]).upper().split() if typ == "OK" and data else []
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
            self._uidvalidity = as_text(data[-1]) if data and data[-1] is not None else ""
        return box

    def _command(self, box: BaseMailBox, doing: str, *args: Any) -> list[Any]:
        """``UID <args>`` with errors turned into TransportError."""
        try:
            typ, data = box.client.uid(*args)
        except Exception as exc:
            self._raise(doing, exc)
        if typ != "OK":
            said = " ".join(as_text(d) for d in data if isinstance(d, bytes))
            raise TransportError(
                f"{self._where}: {doing}: server said {typ} {_scrub(said, self._endpoint.password)}"
            )
        return list(data)


def _scrub(text: str, secret: str | None) -> str:
    return redact(text, secret)
