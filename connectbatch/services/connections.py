"""Connections: create, edit, delete and check them (every field, the typed transfer
settings included, is validated here, once), and the wizard's *Test connection*."""

from __future__ import annotations

import calendar
import datetime as dt
import ipaddress
import re
import unicodedata
from dataclasses import fields, replace
from pathlib import PurePosixPath
from typing import Any

from connectbatch import mail_address, schemas
from connectbatch.errors import ConfigurationError
from connectbatch.escaping import visible
from connectbatch.models import (
    FIXED_ABBREVIATIONS,
    AfterSuccess,
    CatalogMode,
    Connection,
    Credential,
    Direction,
    Method,
    Methodology,
    Redelivery,
    Role,
)
from connectbatch.parser import plan as csvplan
from connectbatch.parser.api import check_timezone
from connectbatch.pipeline import syncback
from connectbatch.services.base import (
    CredentialInput,
    InvalidInputError,
    Provisioned,
    _enum,
    requires,
)
from connectbatch.services.credentials import CredentialServices, _checked_credential
from connectbatch.services.delivery import checked_expectation
from connectbatch.services.partners import check_export_sources, check_movable, resolve_partner
from connectbatch.store import connections as connection_store
from connectbatch.store import credentials as credential_store
from connectbatch.store import host_keys as host_key_store
from connectbatch.store import runs as run_store
from connectbatch.transfer.base import RemoteFile, open_transport
from connectbatch.transfer.pull import login
from connectbatch.transfer.specs import AuthKind, TransferSpec, check_spec, default_spec, spec_type

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# One label of a host name (RFC 1123): letters, digits, hyphens inside, at most 63 characters.
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class ConnectionServices(CredentialServices):
    def connections(self) -> list[Connection]:
        with self.db.connect() as con:
            return connection_store.list_all(con)

    @requires(Role.ANALYST)
    def create_connection(
        self,
        draft: Connection,
        credential: CredentialInput | None = None,
        partner: str | int | None = None,
        reuse_credential: int | None = None,
    ) -> tuple[Connection, Provisioned | None]:
        """Create a connection; push connections get provisioned credentials (returned
        once), pull connections store the credential that was entered (encrypted). It
        belongs to `partner` (name or id), else to `draft.partner_id`: one is required.
        `reuse_credential` (an id) makes it use a credential set of the same partner instead
        of creating one; nothing secret is returned then (secrets are shown once)."""
        if (
            reuse_credential is not None
            and credential is not None
            and (credential.username or credential.password or credential.private_key)
        ):
            raise InvalidInputError(
                "reuse_credential", "give new credentials or reuse existing ones, not both"
            )
        draft = self._checked(draft)
        provisioned: Provisioned | None = None
        with self.db.transaction() as con:
            given = partner if partner is not None else draft.partner_id
            owner = resolve_partner(con, given, self.default_partner)
            draft = replace(draft, partner_id=owner.id)
            draft = replace(draft, export_sources=check_export_sources(con, draft))
            if connection_store.find(con, draft.name) is not None:
                raise InvalidInputError("name", f"a connection named {draft.name!r} already exists")
            draft = replace(draft, mail_tag=self._new_tag(draft))
            self._check_mail_address(connection_store.list_all(con), draft)
            created = connection_store.insert(con, draft, self.clock())
            if reuse_credential is not None:
                self._reuse(con, created, reuse_credential)
            elif draft.methodology in (Methodology.PUSH, Methodology.PULL_FROM_US):
                provisioned = self._provision(con, created, credential)
            elif credential is not None:
                self._store_remote(con, created, credential)
        return created, provisioned

    @requires(Role.ANALYST)
    def update_connection(self, name_or_id: str | int, **changes: Any) -> Connection:
        current = self.connection(name_or_id)
        allowed = {f.name for f in fields(Connection)} - {
            "id",
            "status",
            "last_active",
            "created_at",
            "updated_at",
            "mail_tag",  # the address partners were given: kept (see _kept_tag)
        }
        unknown = set(changes) - allowed - {"partner"}
        if unknown:
            raise InvalidInputError(sorted(unknown)[0], "cannot be changed")
        for fixed in ("data_type", "direction", "method", "methodology"):
            if fixed in changes and str(changes[fixed]) != str(getattr(current, fixed)):
                # Credentials, folders and history depend on these: a different kind of
                # connection is a new connection.
                raise InvalidInputError(fixed, "cannot be changed after creation; create a new connection")
        partner = changes.pop("partner", None)
        updated = self._checked(replace(current, **changes))
        with self.db.transaction() as con:
            if partner is not None or updated.partner_id != current.partner_id:
                # Moving to another partner: its exports and modifications follow the new one.
                owner = resolve_partner(con, partner if partner is not None else updated.partner_id)
                updated = replace(updated, partner_id=owner.id)
                if owner.id != current.partner_id:
                    check_movable(con, current, self.settings.outbound / str(current.id))
                    self._credentials_follow(con, current, owner.id)
            updated = replace(updated, export_sources=check_export_sources(con, updated))
            clash = connection_store.find(con, updated.name)
            if clash is not None and clash.id != current.id:
                raise InvalidInputError("name", f"a connection named {updated.name!r} already exists")
            updated = replace(updated, mail_tag=self._kept_tag(current, updated))
            self._check_mail_address(connection_store.list_all(con), updated)
            before, after = _route(current), _route(updated)
            if after != before:  # a clash made earlier does not block unrelated edits
                shared = [c.id for c in credential_store.of_connection(con, current.id)]
                field = "pattern" if after[1] != before[1] else "folder"
                self._check_shared_route(con, updated, shared, field)
            return connection_store.update(con, updated)

    @requires(Role.ANALYST)
    def delete_connection(self, name_or_id: str | int) -> None:
        """Delete a connection and the credentials only it uses (a set other connections of
        the partner also use stays theirs); its runs, data and actions stay. Not while a batch
        of it is held for review: release and discard need the connection, so the batch stayed
        on the Validation page for good ("unexpected LookupError" on Discard)."""
        current = self.connection(name_or_id)
        with self.db.transaction() as con:
            held = [r.id for r in run_store.quarantined(con) if r.connection_id == current.id]
            if held:
                runs = ", ".join(str(i) for i in sorted(held))
                raise InvalidInputError(
                    "connection", f"{current.name!r} has {len(held)} batch(es) held for review (run {runs}): "
                    "release or discard them on the Validation page first",
                )  # fmt: skip
            connection_store.delete(con, current.id)

    @requires(Role.ANALYST)
    def check_connection(self, draft: Connection) -> Connection:
        """Check a draft as create_connection would (the wizard validates step by step);
        returns it cleaned, or raises InvalidInputError naming the field."""
        checked = self._checked(draft)
        clash = next((c for c in self.connections() if c.name == checked.name), None)
        if clash is not None and clash.id != draft.id:
            raise InvalidInputError("name", f"a connection named {checked.name!r} already exists")
        self._check_mail_address(self.connections(), replace(checked, id=draft.id))
        return checked

    def _new_tag(self, draft: Connection) -> str | None:
        """A new e-mail push connection's address tag: its name and a random ending
        (mail_address), never one a draft brings."""
        if not mail_address.is_mailed_to(draft):
            return None
        return mail_address.new_tag(self.settings.inbound_mailbox, draft.name)

    def _kept_tag(self, before: Connection, after: Connection) -> str | None:
        """The address tag `after` keeps: an e-mail push connection keeps the one it had (or
        its name made) before, through a rename, since partners were given that address."""
        if not mail_address.is_mailed_to(after):
            return None
        return self.address_tag(before)

    def _check_mail_address(self, others: list[Connection], c: Connection) -> None:
        """An e-mail push connection is found by its address, inbox+<tag>@...: two with one
        address would each take the other's mail (another partner's files). A new one's
        random ending (`_new_tag`) keeps it apart; connections from before tags had one
        were told apart by their names' tags, and still are."""
        if not mail_address.is_mailed_to(c) or (not c.id and not c.mail_tag):
            return  # a draft not created yet: Create gives it an address of its own
        tag = self.address_tag(c)
        for other in others:
            if mail_address.is_mailed_to(other) and other.id != c.id and self.address_tag(other) == tag:
                raise InvalidInputError(
                    "name",
                    f"would share the e-mail address {self.inbound_address(c)} with the connection "
                    f"{other.name!r}: choose a name that differs in more than case and punctuation",
                )

    def _reuse(self, con: Any, connection: Connection, credential_id: int) -> Credential:
        """As CredentialServices._reuse (create with a reused set, or an existing connection
        taking one), refused when the login's uploads could no longer be told apart."""
        reused = super()._reuse(con, connection, credential_id)
        self._check_shared_route(con, connection, [credential_id], "reuse_credential")
        return reused

    def _check_shared_route(self, con: Any, c: Connection, credential_ids: list[int], field: str) -> None:
        """A push login several connections share has one home; an upload goes to the one
        connection whose folder and pattern match it, and one matching several is ingested by
        none (transfer/push/gateway.py `route`: no "most specific wins"). Two of them with equal
        patterns in the same folder (or one taking that pattern from every folder) would get
        nothing, so that is refused here rather than found when files pile up unrouted."""
        if c.methodology is not Methodology.PUSH:
            return
        folder, pattern = _route(c)
        for credential_id in credential_ids:
            for other_id in credential_store.connection_ids(con, credential_id):
                other = connection_store.get(con, other_id) if other_id != c.id else None
                if other is None or other.methodology is not Methodology.PUSH:
                    continue
                other_folder, other_pattern = _route(other)
                if pattern != other_pattern or (folder and other_folder and folder != other_folder):
                    continue
                where = (
                    f"in the folder {folder or other_folder}/"
                    if folder or other_folder
                    else "in any folder of the login"
                )
                raise InvalidInputError(
                    field,
                    f"{visible(other.name)!r} uses the same push login (credential {credential_id}) with the "
                    f"same file pattern {visible(pattern)!r} {where}: an upload there would match both and "
                    "neither would ingest it (a shared login's upload goes only to the one connection "
                    "it matches). Give this connection a distinct pattern or folder, or its own login",
                )

    def _checked(self, c: Connection) -> Connection:
        name = (c.name or "").strip()
        if not name:
            raise InvalidInputError("name", "is required")
        if len(name) > 100:
            raise InvalidInputError("name", "is longer than 100 characters")
        try:
            schemas.get(c.data_type)
        except KeyError as exc:
            raise InvalidInputError("data_type", str(exc)) from None
        direction, method, methodology = (
            _enum(Direction, c.direction, "direction"),
            _enum(Method, c.method, "method"),
            _enum(Methodology, c.methodology, "methodology"),
        )
        if direction is Direction.OUTBOUND and methodology is not Methodology.PULL_FROM_US:
            raise InvalidInputError(
                "methodology", "outbound connections are collected by the partner: use 'pull_from_us'"
            )
        if direction is Direction.INBOUND and methodology is Methodology.PULL_FROM_US:
            raise InvalidInputError(
                "methodology", "inbound connections are 'push' (to us) or 'pull' (from a third party)"
            )
        if direction is Direction.OUTBOUND and method is Method.EMAIL:
            raise InvalidInputError("method", "outbound connections are collected over SFTP or FTP")
        paths = (("folder", c.folder), ("archive_folder", c.archive_folder), ("pattern", c.pattern))
        for field, text in paths:
            if text and visible(text) != text:  # a NUL cut the path in C, a newline an FTP command
                raise InvalidInputError(field, f"must not contain control characters: {visible(text)!r}")
        folder = c.folder
        if methodology is Methodology.PULL and method is not Method.EMAIL:
            if not folder or not PurePosixPath(folder).is_absolute():
                raise InvalidInputError(
                    "folder", "must be an absolute path such as /home/AcmeAdvertiser/Conversions"
                )
            if ".." in PurePosixPath(folder).parts:
                raise InvalidInputError("folder", "must not contain '..'")
        host = checked_host(c.host)
        if methodology is Methodology.PULL and host is None:
            raise InvalidInputError("host", "is required to pull from a third party")
        pattern = (c.pattern or "").strip()
        if not pattern or "/" in pattern:
            raise InvalidInputError(
                "pattern", "a file-name wildcard such as Conversions_202?_*.csv (no folders)"
            )
        if c.port is not None and not 1 <= int(c.port) <= 65535:
            raise InvalidInputError("port", "must be between 1 and 65535")
        if c.return_email and not _EMAIL.fullmatch(c.return_email.strip()):
            raise InvalidInputError("return_email", f"{c.return_email!r} is not an e-mail address")
        if c.lock_days < 0 or c.lock_days > 3650:
            raise InvalidInputError("lock_days", "must be between 0 and 3650 days")
        if c.min_age_seconds < 0:
            raise InvalidInputError("min_age_seconds", "cannot be negative")
        if c.min_age_seconds > MAX_MIN_AGE_SECONDS:  # the column is 32 bits: a database error
            raise InvalidInputError("min_age_seconds", f"at most {MAX_MIN_AGE_SECONDS:,} seconds (30 days)")
        if c.schedule:
            _check_cron(c.schedule)
        try:
            check_timezone(c.timezone)
        except ConfigurationError:
            raise InvalidInputError(
                "timezone", f"{c.timezone!r} is not an IANA time zone such as America/New_York"
            ) from None
        if c.timezone in FIXED_ABBREVIATIONS:
            region, fixed = FIXED_ABBREVIATIONS[c.timezone]
            raise InvalidInputError(
                "timezone", f"{c.timezone} is one offset all year, without daylight saving time: "
                f"use {region} for that region's time, or {fixed} for the same offset all year",
            )  # fmt: skip
        if c.encoding:
            try:
                "".encode(c.encoding)
            except LookupError:
                raise InvalidInputError("encoding", f"unknown encoding {c.encoding!r}") from None
        try:
            csvplan.check_delimiter(c.delimiter)
        except ConfigurationError as exc:
            raise InvalidInputError("delimiter", str(exc)) from None
        after_success = _enum(AfterSuccess, c.after_success, "after_success")
        c = replace(
            c, redelivery=_enum(Redelivery, c.redelivery, "redelivery"),
            catalog_mode=_enum(CatalogMode, c.catalog_mode, "catalog_mode"),
        )  # fmt: skip
        if after_success is AfterSuccess.ARCHIVE and not (c.archive_folder or "").startswith("/"):
            raise InvalidInputError("archive_folder", "must be an absolute path to archive into")
        c = checked_expectation(c)  # expected delivery (services/delivery.py)
        c = checked_sync_back(c, direction)
        return replace(
            c, name=name, direction=direction, method=method, methodology=methodology,
            pattern=pattern, return_email=(c.return_email or "").strip() or None,
            after_success=after_success, host=host, transfer=_checked_spec(method, c.transfer, host),
        )  # fmt: skip

    @requires(Role.ANALYST)
    def test_connection(
        self, draft: Connection, credential: CredentialInput, host_key: str | None = None
    ) -> list[RemoteFile]:
        """The wizard's *Test connection*: log in with the details entered (nothing is saved)
        and list what the connection would take now. Raises TransportError with the reason."""
        draft = self._checked(draft)
        credential = _checked_credential(draft, credential)
        with self.db.connect() as con:  # the server's pin, whatever credential is tested
            pinned = host_key_store.get(con, draft.host, draft.port)
        if pinned is not None and pinned.host_key:
            host_key = pinned.host_key
        endpoint = login.login_endpoint(
            draft, username=credential.username,
            secret=credential.private_key if credential.auth is AuthKind.KEY else credential.password,
            auth=credential.auth, passphrase=credential.passphrase, host_key=host_key, timeout=15.0,
        )  # fmt: skip
        with login.open_pinned(self.db, draft.method.value, endpoint, open_transport) as transport:
            return transport.list_files(draft.folder or "", draft.pattern)


def _checked_spec(method: Method, spec: TransferSpec | None, host: str | None) -> TransferSpec:
    """The method's typed settings, defaults filled in, checked once (ConfigurationError
    names the setting; it becomes an InvalidInputError the form or CLI can point at)."""
    if spec is None:
        spec = default_spec(method)
    elif not isinstance(spec, spec_type(method)):
        raise InvalidInputError("transfer", f"{type(spec).__name__} is not for {method.value} connections")
    try:
        return check_spec(spec, host)
    except ConfigurationError as exc:
        field, _, message = str(exc).partition(": ")
        raise InvalidInputError(field, message or str(exc)) from None


def _route(c: Connection) -> tuple[str, str]:
    """Folder and pattern as a shared login's routing compares them (push.routing.route: the folder
    without its slashes, "" anywhere; the pattern case-sensitively, in composed Unicode)."""
    return (c.folder or "").strip().strip("/"), unicodedata.normalize("NFC", (c.pattern or "*").strip())


# A file must wait at most this long in the partner's folder before a pull takes it.
MAX_MIN_AGE_SECONDS = 30 * 24 * 3600


def checked_host(given: str | None) -> str | None:
    """The partner's server as the transports connect to it, or None when none is given: a DNS
    name (RFC 1123 labels, a trailing dot allowed), an IPv4 address, or an IPv6 address stored
    bare, without brackets (socket.create_connection, ftplib and imaplib take it so, and the
    pinned host keys are filed under that text). Checked here because a URL, a port or a path
    pasted into the field was saved and only failed at *Test connection* or the first pull."""
    text = (given or "").strip()
    if not text:
        return None
    if any(ch.isspace() for ch in text):
        raise InvalidInputError(
            "host", f"{visible(text)!r} contains a space: give the server's name or address alone"
        )
    if "://" in text:
        scheme = text.partition("://")[0]
        raise InvalidInputError(
            "host", f"{visible(text)!r} is a URL: give the host alone, without {visible(scheme)}://"
        )
    if "@" in text:
        raise InvalidInputError(
            "host", f"{visible(text)!r} contains '@': give the host alone; the user name goes with the login"
        )
    if "/" in text or "\\" in text:
        raise InvalidInputError(
            "host", f"{visible(text)!r} has a path: give the host alone; the folder goes in the folder field"
        )
    if text.startswith("["):
        inner, closed, after = text[1:].partition("]")
        if closed and after.startswith(":") and after[1:].isdigit():
            raise InvalidInputError("host", f"{visible(text)!r} has a port: give it in the port field")
        if not closed or after:
            raise InvalidInputError("host", f"{visible(text)!r} is not an IPv6 address in [brackets]")
        return _ipv6(inner, text)
    name, colon, port = text.partition(":")
    if colon and ":" not in port:  # one colon: a host and a port, never an IPv6 address
        if port.isdigit():
            raise InvalidInputError(
                "host",
                f"{visible(text)!r} has a port: give {visible(name)!r} here and {port} in the port field",
            )
        raise InvalidInputError("host", f"{visible(text)!r} contains ':': give the host alone")
    if colon:
        return _ipv6(text, text)
    return _host_name(text)


def _ipv6(address: str, given: str) -> str:
    try:
        return str(ipaddress.IPv6Address(address))  # compressed, lower case: one text per server
    except ValueError:
        raise InvalidInputError("host", f"{visible(given)!r} is not an IPv6 address") from None


def _host_name(text: str) -> str:
    """A DNS name or an IPv4 address, as given (a name in another script is checked in its
    xn-- form, which is what the resolver receives)."""
    if re.fullmatch(r"[0-9.]+", text):
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise InvalidInputError(
                "host", f"{text!r} is not an IPv4 address (four numbers 0-255 separated by dots)"
            ) from None
    try:
        ascii_name = text if text.isascii() else text.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInputError("host", f"{visible(text)!r} is not a valid host name") from None
    name = ascii_name.removesuffix(".")
    if len(name) > 253:
        raise InvalidInputError("host", "is longer than 253 characters, the most a host name can have")
    for label in name.split("."):
        if _HOST_LABEL.fullmatch(label):
            continue
        wrong = next((ch for ch in label if not (ch.isascii() and (ch.isalnum() or ch == "-"))), None)
        if wrong is not None:
            why = f"contains {visible(wrong)!r}: a host name has only letters, digits, hyphens and dots"
        elif not label:
            why = "has an empty part between dots"
        elif len(label) > 63:
            why = f"has a part longer than 63 characters ({label[:20]}...)"
        else:
            why = f"has a part that starts or ends with a hyphen ({label!r})"
        raise InvalidInputError("host", f"{visible(text)!r} {why}")
    return text


def _check_cron(expression: str) -> None:
    """A schedule must be cron and must fire: `0 0 31 2 *` parses, but the scheduler (the same
    trigger, engine/cron.py) finds no next run, so the connection silently never ran."""
    from connectbatch.engine import cron

    try:
        trigger = cron.trigger(expression)
    except ValueError as exc:
        raise InvalidInputError("schedule", f"{expression!r} is not a cron expression ({exc})") from None
    if trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC)) is None:
        raise InvalidInputError("schedule", f"{expression!r} never fires: {_no_such_date(expression)}")


def _no_such_date(expression: str) -> str:
    """Why no date matches, in words: a single day of the month in named months ("there is no
    31 February") when the fields are that plain, else which fields contradict each other."""
    _minute, _hour, day, month, _weekday = expression.split()
    names = [m.lower() for m in calendar.month_abbr]
    months = [int(m) if m.isdigit() else names.index(m.lower()) if m.lower() in names else 0
              for m in month.split(",")]  # fmt: skip
    if day.isdigit() and all(1 <= m <= 12 for m in months):
        return "there is no " + " or ".join(f"{int(day)} {calendar.month_name[m]}" for m in months)
    return "no date matches its day of the month, month and day of the week together"


def checked_sync_back(c: Connection, direction: Direction) -> Connection:
    """Status sync-back settings as stored (pipeline/syncback.py): channels and the partner's
    status words checked; only inbound connections report back."""
    try:
        channels = syncback.checked_channels(c.sync_back)
        words = syncback.checked_words(c.status_words)
    except syncback.SyncBackSettingError as exc:
        raise InvalidInputError(exc.field, str(exc)) from None
    if channels and direction is not Direction.INBOUND:
        raise InvalidInputError("sync_back", "status sync-back is for inbound connections")
    return replace(c, sync_back=channels, status_words=words)
