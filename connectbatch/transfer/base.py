"""What every pull transport provides, and the registry that maps a method to one.

A transport lists the files in a folder that match a connection's wildcard, fetches one to
a local path, and tidies up after a successful run (leave, archive or delete). It knows
nothing of parsing or the store: `ingest` decides what to take from the list, and the
ledger remembers what was taken.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Self, TypeVar

from connectbatch.errors import RemoteFileTooLargeError, TransportError
from connectbatch.models import AfterSuccess
from connectbatch.transfer.specs import FtpSpec, ImapSpec, SftpSpec, TransferSpec

MAX_NUMBER_DIGITS = 20  # more than any size (2^64 has 20 digits) or IMAP UID (32 bits) has


def server_number(text: str | None) -> int | None:
    """A number a partner's server sent (a listed size, an IMAP UID or RFC822.SIZE), or None
    (unknown) for anything but ASCII digits, at most MAX_NUMBER_DIGITS of them. A hostile
    server's 5,000 digits (past Python's limit for int()) or a "²" (a digit to str.isdigit)
    raised ValueError out of the pull: a scheduled run recorded nothing, a manual one failed
    with an internal error, every time."""
    if not text or len(text) > MAX_NUMBER_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


S = TypeVar("S", SftpSpec, FtpSpec, ImapSpec)


@dataclass(frozen=True)
class RemoteFile:
    """A file as the remote side lists it. `ref` is whatever the transport needs to fetch
    it again (a path, or a message UID and attachment index for e-mail)."""

    name: str
    path: str
    size: int | None
    mtime: dt.datetime | None
    ref: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def time_by_day(self) -> bool:
        """Whether the listing gave the time to the day only (an FTP LIST line of a file older
        than six months shows the year instead of the hours): a recorded time on that date is
        the same version's."""
        return self.extra.get("mtime_precision") == DAY_PRECISION


# `RemoteFile.extra["mtime_precision"]` of a time known to the day only (FTP LIST).
DAY_PRECISION = "day"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to log in: host, port, user, secret, plus the method's typed settings
    (`spec`: an SftpSpec, FtpSpec or ImapSpec; None means that method's defaults)."""

    host: str
    port: int | None = None
    username: str | None = None
    password: str | None = None
    private_key: str | None = None  # PEM/OpenSSH text
    key_passphrase: str | None = None
    host_key: str | None = None  # pinned "<type> <base64>" for SFTP; None = first use
    spec: TransferSpec | None = None
    timeout: float = 30.0
    # The most bytes one fetch writes (CONNECTBATCH_MAX_FILE_BYTES; None: no limit): past it
    # the transport stops reading and raises RemoteFileTooLargeError.
    max_bytes: int | None = None

    def spec_of(self, kind: type[S]) -> S:
        """The typed settings a transport of `kind` reads: its own, or the defaults."""
        if self.spec is None:
            return kind()
        if not isinstance(self.spec, kind):
            raise TransportError(
                f"{type(self.spec).__name__} given to a transport that needs {kind.__name__}"
            )
        return self.spec


class Transport(abc.ABC):
    """What every pull transport does; `with open_transport(...) as t:` closes it."""

    # True where a listed file never changes in place (an e-mail attachment): a file refused
    # for good (rejected as a whole, over the size limit) is then settled like a taken one
    # (`after_success` with "leave": a mail is marked processed), since a corrected file can
    # only come as a new one, and fetching it again on every poll would change nothing. A
    # file on a server stays where it is, so the partner can see it was not taken.
    settles_refused: ClassVar[bool] = False

    @abc.abstractmethod
    def list_files(self, folder: str, pattern: str) -> list[RemoteFile]: ...

    @abc.abstractmethod
    def fetch(self, remote: RemoteFile, target: Path) -> None: ...

    @abc.abstractmethod
    def after_success(
        self, remote: RemoteFile, action: AfterSuccess | str, archive_folder: str | None
    ) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def after_success_action(action: AfterSuccess | str | None) -> AfterSuccess:
    """What to do with a remote file after its run succeeded, in the one wording every
    transport uses for a value that is not leave, archive or delete."""
    try:
        return AfterSuccess((action or AfterSuccess.LEAVE).strip().lower())
    except ValueError:
        allowed = ", ".join(a.value for a in AfterSuccess)
        raise TransportError(f"unknown after-success action {action!r} (expected one of {allowed})") from None


def limited(endpoint: Endpoint, max_bytes: int) -> Endpoint:
    """`endpoint` with a fetch limit, unless it has one already."""
    return endpoint if endpoint.max_bytes is not None else replace(endpoint, max_bytes=max_bytes)


def too_large(where: str, path: str, limit: int) -> RemoteFileTooLargeError:
    """The one wording of a remote file over the size limit (listed so, or streamed past it)."""
    prefix = f"{where}: " if where else ""
    return RemoteFileTooLargeError(
        f"{prefix}{path} is larger than the limit of {limit:,} bytes "
        "(CONNECTBATCH_MAX_FILE_BYTES); it was not downloaded past it"
    )


def over_limit(remote: RemoteFile, max_bytes: int | None) -> bool:
    """Whether the listing already says the file is over the limit (then it is not fetched)."""
    return max_bytes is not None and remote.size is not None and remote.size > max_bytes


# How long after a listed time a file may really have been written, by the listing's
# precision (`extra["mtime_precision"]`: an FTP LIST line gives minutes, or only the day).
_SPAN = {"minute": dt.timedelta(minutes=1), DAY_PRECISION: dt.timedelta(days=1)}


def old_enough(remote: RemoteFile, min_age_seconds: int, now: dt.datetime) -> bool:
    """Whether the file is at least `min_age_seconds` old. A time known to the minute or the
    day is judged by the end of that minute or day: "14:00" in a LIST line may be 14:00:52,
    and a file 10 s old passed a minimum age of a minute."""
    if min_age_seconds <= 0 or remote.mtime is None:
        return True
    newest = remote.mtime + _SPAN.get(remote.extra.get("mtime_precision", ""), dt.timedelta(0))
    return (now - newest).total_seconds() >= min_age_seconds


def changed_since(remote: RemoteFile, size: int | None, mtime: dt.datetime | None) -> str | None:
    """How the file the server has now differs from the listed `remote` (its size; its time,
    to the second or to the listing's coarser precision), or None when it looks the same or
    the server does not say. Checked after a fetch (rewritten in place while we read it) and
    before a delete or an archive (replaced since we fetched it: that version is not ours)."""
    if remote.size is not None and size is not None and size != remote.size:
        return f"listed {remote.size} bytes, now {size}"
    if remote.mtime is None or mtime is None:
        return None
    span = _SPAN.get(remote.extra.get("mtime_precision", ""))
    listed = remote.mtime.replace(microsecond=0)
    if span is None:
        same = abs((mtime.replace(microsecond=0) - listed).total_seconds()) < 1
    else:
        same = listed <= mtime < listed + span
    return None if same else f"listed as modified {remote.mtime.isoformat()}, now {mtime.isoformat()}"


TransportFactory = Callable[[Endpoint], Transport]
Opener = Callable[[str, Endpoint], Transport]  # (method, endpoint) -> transport
_REGISTRY: dict[str, TransportFactory] = {}


def register(method: str) -> Callable[[TransportFactory], TransportFactory]:
    def wrap(factory: TransportFactory) -> TransportFactory:
        _REGISTRY[method] = factory
        return factory

    return wrap


def open_transport(method: str, endpoint: Endpoint) -> Transport:
    if method not in _REGISTRY:
        # Importing the module registers it; keeps start-up free of paramiko/imap imports.
        import importlib

        try:
            importlib.import_module(f"connectbatch.transfer.pull.{'imap' if method == 'email' else method}")
        except ImportError as exc:
            raise TransportError(f"no transport for method {method!r}") from exc
    return _REGISTRY[method](endpoint)
