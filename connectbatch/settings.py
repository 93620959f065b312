"""Runtime configuration: the one module that reads the environment.

Every CONNECTBATCH_* variable is read here, and only here (a unit test greps the package
for `os.environ` elsewhere), into typed, frozen settings objects; a malformed value is a
ConfigurationError naming the variable, never a traceback from deep inside a server. Other
modules take their values from the `Settings` they are given. The README's Configuration
table documents every variable (a unit test holds the two equal).

Defaults work on a laptop: everything lives under ./data and servers bind to 127.0.0.1.
`Settings(...)` built in code uses the defaults below; `Settings.from_env()` reads the
environment.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path

from connectbatch.errors import ConfigurationError

PREFIX = "CONNECTBATCH_"
# The committed expectation suites, at the top of the source tree (next to the package).
DEFAULT_EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"
PORTS = (0, 65535)  # 0: the hosted server is off / the protocol's default port
DAY_SECONDS = 86400
YEAR_HOURS = 8760
PULL_WORKERS = 20
# Distributed mode: seconds before a dead worker's task is delivered again. A worker's pull is
# cut under it (distributed.tasks.pull_deadline), so it is also the longest pull there: 10
# minutes lets a pull download ~1.5 GB at 25 Mbit/s, and a killed worker's task waits that long.
VISIBILITY_TIMEOUT = 600
PULL_DEADLINE = 7200.0  # 2 GB (the default file limit) at 2.5 Mbit/s
MAX_FILE_BYTES = 1 << 50  # 1 PiB: a bound for the check, far above any file we take
# Hosted servers: logged-in sessions one login may hold at once. Common clients open 2-3
# (FileZilla and WinSCP: one for browsing plus two transfers), a scripted uploader working in
# parallel a few more; a login that takes many more would crowd every other partner out of the
# server's sessions (CONNECTBATCH_MAX_SESSIONS_PER_LOGIN). 8, as many as one address may have
# connecting (CONNECTBATCH_MAX_CONNECTIONS_PER_ADDRESS), so 16 partners fill the SFTP server's 128.
MAX_SESSIONS_PER_LOGIN = 8
# Bytes one connection's uploads may hold waiting in its push folder (ingested uploads go at
# once, so this is what a partner can leave there): far above a day's files, far below a disk.
PUSH_QUOTA_BYTES = 10 * 1024**3
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _str(name: str, default: str = "") -> str:
    """The variable's value; unset and empty both mean `default`."""
    return os.environ.get(name) or default


def _int(name: str, default: int, *, within: tuple[int, int] | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if within is not None and not within[0] <= value <= within[1]:
        low, high = within
        raise ConfigurationError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return value


def _float(name: str, default: float, *, within: tuple[float, float]) -> float:
    """A number within `within` (inclusive). Every float setting has a range: float() also
    takes "nan", "inf" and negatives: a NaN or negative reject rate let every ingest start and
    then fail each file at validation, and an infinite linger crashed the database's closing
    thread with a traceback."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
    low, high = within
    if not low <= value <= high:  # false for NaN too
        raise ConfigurationError(f"{name} must be a number from {low:g} to {high:g}, not {raw!r}")
    return value


def _bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false (1/0, yes/no), not {raw!r}")


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _str(name, default).strip().lower()
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw) if raw else default


def _email(name: str, default: str) -> str:
    value = _str(name, default)
    local, at, domain = value.partition("@")
    if not (local and at and domain) or any(ch.isspace() for ch in value):
        raise ConfigurationError(f"{name} must be an e-mail address like inbox@example.com, not {value!r}")
    return value


def _sender(name: str, default: str) -> str:
    """A sender address, bare or with a display name ("ConnectBatch <cb@example.com>"): every
    results mail, alert and status file goes out From it, so a value no relay takes ("bad",
    a line break) was found only as each message failed, two days later."""
    value = _str(name, default)
    address = parseaddr(value)[1]
    local, at, domain = address.partition("@")
    if not (local and at and domain) or any(not ch.isprintable() for ch in value):
        raise ConfigurationError(
            f"{name} must be an e-mail address like connectbatch@example.com, not {value!r}"
        )
    return value


def _host_name(name: str) -> str | None:
    """A host name or address partners are told to connect to: one word, printable. A space
    or a line break in it was printed with every provisioned login as it was."""
    value = _str(name).strip()
    if value and any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ConfigurationError(f"{name} must be a host name such as sftp.example.com, not {value!r}")
    return value or None


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _redis_url(name: str, default: str, mode: str) -> str:
    """Checked in distributed mode only (embedded mode never connects): anything else than a
    Redis URL was an internal error from the Redis client in `workers` and `serve --coordinator`."""
    value = _str(name, default).strip()
    if mode == "distributed" and not value.startswith(REDIS_SCHEMES):
        raise ConfigurationError(
            f"{name} must be a Redis URL such as redis://127.0.0.1:6379/0 "
            f"({', '.join(REDIS_SCHEMES)}), not {value!r}"
        )
    return value


def _port_range(name: str) -> tuple[int, int] | None:
    """ "60000-60100" (inclusive) or one port; unset means any port."""
    raw = _str(name).strip()
    if not raw:
        return None
    low, dash, high = raw.partition("-")
    try:
        first, last = int(low), int(high if dash else low)
    except ValueError:
        raise ConfigurationError(f"{name} must be a port range like 60000-60100, not {raw!r}") from None
    if not 1 <= first <= last <= 65535:
        raise ConfigurationError(f"{name} must be a port range like 60000-60100, not {raw!r}")
    return first, last


def _fernet_key(key: str) -> bool:
    """Whether `key` is what Fernet takes (URL-safe base64 of 32 bytes), without importing
    cryptography here; the key itself is never echoed."""
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (ValueError, binascii.Error):  # UnicodeEncodeError is a ValueError
        return False


def _writable_folder(folder: Path, variable: str, what: str) -> None:
    """`folder` exists (made if missing) and takes a new file: an unnamed temporary one,
    gone when closed, so the check leaves nothing behind."""
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(f"{what} {folder} ({variable}) cannot be used: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        # A parent that cannot be made is named; the probe's own random name is not.
        inside = str(exc.filename or "").startswith(f"{folder}{os.sep}")
        where = exc.filename if exc.filename and not inside else folder
        raise ConfigurationError(
            f"{what} {folder} ({variable}) cannot be used: {exc.strerror or exc}: {where}"
        ) from None


def expectations_dir() -> Path:
    """CONNECTBATCH_EXPECTATIONS_DIR: where the committed expectation suites are read from.
    On its own because validation looks it up when first imported, before any Settings."""
    return _path(f"{PREFIX}EXPECTATIONS_DIR", DEFAULT_EXPECTATIONS_DIR)


VALIDATION_ENGINES = ("columnar", "gx")


def validation_engine() -> str:
    """CONNECTBATCH_VALIDATION_ENGINE: "columnar" (default) judges the expectation types the
    columnar evaluator knows with Arrow and the rest with great-expectations; "gx" sends every
    expectation to great-expectations (the reference, ~1 s more per file). Read per validation
    on its own, like the expectations folder, because validation runs without a Settings."""
    return _choice(f"{PREFIX}VALIDATION_ENGINE", "columnar", VALIDATION_ENGINES)


def cores() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


# numpy's OpenBLAS starts a thread per core when numpy is imported, and each spins ~0.1 s
# waiting for work that never comes: nothing of ours calls a BLAS routine (issue 13: ~130 ms
# of CPU per process start, taken from the other core's parse or a CLI command).
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS",)


def quiet_blas() -> None:
    """One BLAS thread unless the environment already says otherwise; effective only before
    numpy is first imported (connectbatch/__init__.py calls it)."""
    for name in _BLAS_THREADS:
        os.environ.setdefault(name, "1")


def parse_threads() -> int:
    """CONNECTBATCH_PARSE_THREADS: threads one parse of a large file uses (default: the
    cores this process may use); 1 parses on the calling thread alone. Read per parse on its
    own, like the validation engine, because the parser runs without a Settings."""
    return _int(f"{PREFIX}PARSE_THREADS", cores(), within=(1, 64))


def debug_enabled() -> bool:
    """CONNECTBATCH_DEBUG: the CLI logs and shows tracebacks. Read on its own because the
    CLI needs it before (and even when) the rest of the settings can be read, so it never
    raises: a malformed value is off here and refused by `Settings.from_env`. "0" and
    "false" are off (any non-empty value, "0" included, turned the logs on)."""
    return (os.environ.get(f"{PREFIX}DEBUG") or "").strip().lower() in _TRUE


def arrow_pool_chosen() -> bool:
    """Whether the operator chose Arrow's memory pool (ARROW_DEFAULT_MEMORY_POOL, which Arrow
    reads itself): then `connectbatch.arrow_memory` keeps it."""
    return bool(os.environ.get("ARROW_DEFAULT_MEMORY_POOL"))


def quiet_third_party_telemetry() -> None:
    """Older great-expectations 1.x read GX_ANALYTICS_ENABLED before any network use; the
    environment is this module's to touch, so the default is set here."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class SmtpSettings:
    """Returned results by e-mail (pipeline/mailer.py): CONNECTBATCH_SMTP_*."""

    host: str
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    sender: str = "connectbatch@localhost"
    timeout: float = 30.0
    # Attachments of one message, at most (pipeline/mailer.py): relays commonly refuse 10-25 MB.
    max_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        """None when CONNECTBATCH_SMTP_HOST is unset: no e-mail is sent."""
        host = _str(f"{PREFIX}SMTP_HOST")
        if not host:
            return None
        return cls(
            host=host,
            port=_int(f"{PREFIX}SMTP_PORT", 25, within=(1, 65535)),
            username=_str(f"{PREFIX}SMTP_USER") or None,
            password=_str(f"{PREFIX}SMTP_PASSWORD") or None,
            starttls=_bool(f"{PREFIX}SMTP_STARTTLS"),
            sender=_sender(f"{PREFIX}SMTP_FROM", "connectbatch@localhost"),
            max_bytes=_int(f"{PREFIX}SMTP_MAX_BYTES", 10 * 1024 * 1024, within=(1024, 1024**3)),
        )


@dataclass(frozen=True)
class MailboxSettings:
    """The shared inbound mailbox of e-mail push (engine): CONNECTBATCH_INBOUND_IMAP_*."""

    host: str
    port: int | None
    username: str
    password: str = field(repr=False)
    security: str = "ssl"
    folder: str = "INBOX"

    @classmethod
    def from_env(cls) -> MailboxSettings | None:
        """None when CONNECTBATCH_INBOUND_IMAP_HOST is unset: the mailbox is not polled."""
        host = _str(f"{PREFIX}INBOUND_IMAP_HOST")
        if not host:
            return None
        port = _int(f"{PREFIX}INBOUND_IMAP_PORT", 0, within=PORTS)
        return cls(
            host=host,
            port=port or None,
            username=_str(f"{PREFIX}INBOUND_IMAP_USER"),
            password=_str(f"{PREFIX}INBOUND_IMAP_PASSWORD"),
            security=_choice(f"{PREFIX}INBOUND_IMAP_SECURITY", "ssl", ("ssl", "starttls", "plain")),
            folder=_str(f"{PREFIX}INBOUND_IMAP_FOLDER", "INBOX"),
        )


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path("data"))
    db_path: Path | None = None
    bind: str = "127.0.0.1"
    sftp_port: int = 2222
    ftp_port: int = 2121
    max_file_bytes: int = 2 * 1024**3
    lock_timeout: float = 30.0  # seconds to wait for another process to release the DB
    db_linger: float = 0.5  # seconds the DB file stays open after an operation (0: closed at once)
    validation_max_age_days: int = 90
    max_reject_rate: float = 0.05
    inbound_mailbox: str = "inbox@connectbatch.local"  # base of inbox+<connection>@... addresses
    secret_key: str | None = field(default=None, repr=False)  # None: the key file under home
    expectations_dir: Path = DEFAULT_EXPECTATIONS_DIR
    smtp: SmtpSettings | None = None  # None: results are not e-mailed
    mailbox: MailboxSettings | None = None  # None: no e-mail push mailbox is polled
    # Hosted FTP server: explicit FTPS with these files, or a self-signed pair under home.
    ftp_cert_file: Path | None = None
    ftp_key_file: Path | None = None
    ftp_passive_ports: tuple[int, int] | None = None  # inclusive; None: any free port
    ftp_require_tls: bool = True  # clear-text logins refused; PROT P required for data
    max_connections_per_address: int = 8  # not-yet-logged-in connections per client address
    max_sessions_per_login: int = MAX_SESSIONS_PER_LOGIN  # logged-in sessions one login may hold
    push_quota_bytes: int = PUSH_QUOTA_BYTES  # bytes a connection's uploads may leave waiting
    preauth_timeout: float = 30.0  # seconds a connection may stay without logging in
    partial_upload_grace_hours: float = 24.0  # broken uploads' partial files kept this long
    public_host: str | None = None  # None: `partner_host` derives it from `bind`
    staging_retention_days: int = 30  # staged raw files older than this are removed; 0: kept
    session_hours: float = 8.0  # an app login lasts this long, then the person logs in again
    # Distributed mode (connectbatch/distributed): embedded is one process, no Redis needed.
    mode: str = "embedded"  # embedded | distributed
    redis_url: str = "redis://127.0.0.1:6379/0"  # broker and result backend (distributed only)
    visibility_timeout: int = VISIBILITY_TIMEOUT  # s before a dead worker's task is delivered again
    # Scheduled pulls run at once at most (their threads are apart from the engine's own jobs),
    # and the seconds one pull may take before it is cut (a Failed run, retried): a server
    # that answers too slowly for any read to time out otherwise held its thread forever.
    pull_workers: int = PULL_WORKERS
    pull_deadline: float = PULL_DEADLINE

    @classmethod
    def from_env(cls) -> Settings:
        # Read again per parse and per validation (they run without a Settings), and checked
        # here: a bad value stops the command or `serve` at start with one line, instead of
        # every partner's file being recorded as rejected with our variable's name as reason.
        parse_threads()
        validation_engine()
        _bool(f"{PREFIX}DEBUG")  # read by debug_enabled, which cannot refuse a bad value itself
        mode = _choice(f"{PREFIX}MODE", "embedded", ("embedded", "distributed"))
        max_file = _int(f"{PREFIX}MAX_FILE_BYTES", 2 * 1024**3, within=(1, MAX_FILE_BYTES))
        return cls(
            home=_path(f"{PREFIX}HOME", Path("data")),
            db_path=Path(db) if (db := _str(f"{PREFIX}DB")) else None,
            bind=_str(f"{PREFIX}BIND", "127.0.0.1"),
            sftp_port=_int(f"{PREFIX}SFTP_PORT", 2222, within=PORTS),
            ftp_port=_int(f"{PREFIX}FTP_PORT", 2121, within=PORTS),
            max_file_bytes=max_file,
            lock_timeout=_float(f"{PREFIX}LOCK_TIMEOUT", 30.0, within=(0, DAY_SECONDS)),
            db_linger=_float(f"{PREFIX}DB_LINGER", 0.5, within=(0, 3600)),
            validation_max_age_days=_int(f"{PREFIX}MAX_AGE_DAYS", 90, within=(1, 1_000_000)),
            max_reject_rate=_float(f"{PREFIX}MAX_REJECT_RATE", 0.05, within=(0, 1)),
            inbound_mailbox=_email(f"{PREFIX}INBOUND_MAILBOX", "inbox@connectbatch.local"),
            secret_key=_str(f"{PREFIX}SECRET_KEY") or None,
            expectations_dir=expectations_dir(),
            smtp=SmtpSettings.from_env(),
            mailbox=MailboxSettings.from_env(),
            ftp_cert_file=_path(f"{PREFIX}FTP_CERT_FILE", Path()) if _str(f"{PREFIX}FTP_CERT_FILE") else None,
            ftp_key_file=_path(f"{PREFIX}FTP_KEY_FILE", Path()) if _str(f"{PREFIX}FTP_KEY_FILE") else None,
            ftp_passive_ports=_port_range(f"{PREFIX}FTP_PASSIVE_PORTS"),
            ftp_require_tls=_bool(f"{PREFIX}FTP_REQUIRE_TLS", True),
            max_connections_per_address=_int(f"{PREFIX}MAX_CONNECTIONS_PER_ADDRESS", 8, within=(0, 100000)),
            max_sessions_per_login=_int(
                f"{PREFIX}MAX_SESSIONS_PER_LOGIN", MAX_SESSIONS_PER_LOGIN, within=(1, 10000)
            ),
            # by default never below one file the size limit allows (an operator who allowed
            # files over 10 GiB would see them refused for the quota after an upgrade)
            push_quota_bytes=_int(
                f"{PREFIX}PUSH_QUOTA_BYTES", max(PUSH_QUOTA_BYTES, max_file), within=(1, MAX_FILE_BYTES)
            ),
            preauth_timeout=_float(f"{PREFIX}PREAUTH_TIMEOUT", 30.0, within=(0, DAY_SECONDS)),
            partial_upload_grace_hours=_float(
                f"{PREFIX}PARTIAL_UPLOAD_GRACE_HOURS", 24.0, within=(0, YEAR_HOURS)
            ),
            public_host=_host_name(f"{PREFIX}PUBLIC_HOST"),
            staging_retention_days=_int(f"{PREFIX}STAGING_RETENTION_DAYS", 30, within=(0, 36500)),
            session_hours=_float(f"{PREFIX}SESSION_HOURS", 8.0, within=(0.01, YEAR_HOURS)),
            mode=mode,
            redis_url=_redis_url(f"{PREFIX}REDIS_URL", "redis://127.0.0.1:6379/0", mode),
            visibility_timeout=_int(f"{PREFIX}VISIBILITY_TIMEOUT", VISIBILITY_TIMEOUT, within=(5, 86400)),
            pull_workers=_int(f"{PREFIX}PULL_WORKERS", PULL_WORKERS, within=(1, 1000)),
            pull_deadline=_float(f"{PREFIX}PULL_DEADLINE", PULL_DEADLINE, within=(1, 7 * DAY_SECONDS)),
        )

    def check_usable(self) -> None:
        """What `from_env` cannot tell from the values alone, checked when a command or `serve`
        starts (cli.common.services): the data directory and the database's folder can be
        made and written, the secret key is a key, a chosen expectations folder is a folder.
        Each was found later, as a bare "[Errno 20] Not a directory", a DuckDB "Cannot open
        file" naming no variable, a credential that could not be stored, or every partner's
        file failing validation with our path in its reason. Kept out of `from_env` because it
        touches the disk (a probe file) and tests build Settings for paths never used."""
        _writable_folder(self.home, f"{PREFIX}HOME", "the data directory")
        if self.db_path is not None:
            if self.db_path.is_dir():
                raise ConfigurationError(
                    f"the database {self.db_path} ({PREFIX}DB) cannot be used: it is a folder; "
                    f"give a file's path such as {self.db_path / 'connectbatch.duckdb'}"
                )
            _writable_folder(self.db_path.parent, f"{PREFIX}DB", "the database's folder")
        if self.secret_key is not None and not _fernet_key(self.secret_key):
            raise ConfigurationError(
                f"{PREFIX}SECRET_KEY is not a valid Fernet key (44 characters of URL-safe "
                "base64, as Fernet.generate_key() makes); unset it to use the key file "
                f"{self.key_file}"
            )
        chosen = self.expectations_dir != DEFAULT_EXPECTATIONS_DIR
        if chosen and not self.expectations_dir.is_dir():
            # A missing default is an installed wheel: the generated suites stand in. A chosen
            # folder that is missing silently dropped the operator's own rules.
            raise ConfigurationError(
                f"{PREFIX}EXPECTATIONS_DIR {self.expectations_dir} is not a folder of expectation suites"
            )

    @property
    def partner_host(self) -> str:
        """The host name partners connect to, as printed with a provisioned login: the
        configured public host, else the bind address, else (bound to every address) this
        machine's fully qualified name."""
        if self.public_host:
            return self.public_host
        if self.bind in ("", "0.0.0.0", "::"):
            import socket

            return socket.getfqdn()
        return self.bind

    @property
    def database(self) -> Path:
        return self.db_path or self.home / "connectbatch.duckdb"

    @property
    def staging(self) -> Path:
        """Received bytes, stored once by sha256 before anything reads them."""
        return self.home / "staging"

    @property
    def runs_dir(self) -> Path:
        """Per-run staged results (accepted rows as Parquet) for quarantine and retry."""
        return self.home / "runs"

    @property
    def outbound(self) -> Path:
        """Results files and summaries for senders, one folder per connection."""
        return self.home / "outbound"

    @property
    def key_file(self) -> Path:
        return self.home / "secret.key"
