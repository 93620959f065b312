"""The façade the UI pages and the CLI call: no SQL and no protocol code above this line.

Every method opens the database for the length of one operation (see store/db.py), so the
app, `connectbatch serve` and the CLI can share a data directory. Input is checked here,
once, with messages that name the field and say what is expected.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import tempfile
import zoneinfo
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from connectbatch import schemas
from connectbatch.errors import ConfigurationError, ConnectBatchError
from connectbatch.explorer import (
    ActionOutcome,
    ActionPage,
    CallFilter,
    CallFilterOptions,
    CallSummary,
    DurationColumn,
)
from connectbatch.models import (
    Action,
    AuditEntry,
    Connection,
    Credential,
    Direction,
    FileRecord,
    Method,
    Methodology,
    RejectRow,
    Run,
)
from connectbatch.parser import api as csvparse
from connectbatch.parser import plan as csvplan
from connectbatch.pipeline import ingest, lifecycle, mailer, results, validation
from connectbatch.pipeline.review import RunReview
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.secrets import SecretBox, hash_password, new_password, new_username
from connectbatch.settings import Settings
from connectbatch.store import Database, exports
from connectbatch.store import actions as action_store
from connectbatch.store import calls as call_store
from connectbatch.store import connections as connection_store
from connectbatch.store import credentials as credential_store
from connectbatch.store import reviews as review_store
from connectbatch.store import runs as run_store
from connectbatch.transfer.base import Endpoint, RemoteFile, open_transport
from connectbatch.transfer.pull import collect

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class NotFoundError(ConnectBatchError, LookupError):
    """A connection, run or action that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInputError(ConnectBatchError, ValueError):
    """A field a person entered has a value we cannot use; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Provisioned:
    """Login details we created for a partner: shown once, never retrievable again."""

    host: str
    port: int | None
    username: str
    password: str
    email_address: str | None = None


@dataclass(frozen=True)
class CredentialInput:
    """Login details a person entered for a pull connection (their server)."""

    name: str
    username: str | None = None
    password: str | None = None
    private_key: str | None = None
    return_email: str | None = None


class Services:
    def __init__(self, settings: Settings | None = None, clock: ingest.Clock = ingest.utcnow) -> None:
        self.settings = settings or Settings.from_env()
        self.db = Database(self.settings.database, self.settings.lock_timeout)
        self.clock = clock
        self.ingestor = ingest.Ingestor(self.settings, self.db, clock)
        self._box: SecretBox | None = None
        self.smtp = self.settings.smtp
        if self.smtp is not None:
            self.ingestor.on_finished.append(self._email_results)

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.for_home(self.settings.home, self.settings.secret_key)
        return self._box

    def startup(self) -> list[int]:
        """Call once when a long-running process starts: fails runs a dead process left."""
        return self.ingestor.recover_interrupted()

    def _email_results(self, run: Run) -> None:
        """Send a finished inbound run's results to the return address of its main credential
        (or of the connection)."""
        if self.smtp is None:
            return
        with self.db.connect() as con:
            connection = connection_store.get(con, run.connection_id)
            creds = credential_store.of_connection(con, connection.id)
        to = next((c.return_email for c in creds if c.is_main and c.return_email), None)
        mailer.notify(self.smtp, to or connection.return_email, connection, run, self.settings.outbound)

    # ------------------------------------------------------------------ connections

    def connections(self) -> list[Connection]:
        with self.db.connect() as con:
            return connection_store.list_all(con)

    def connection(self, name_or_id: str | int) -> Connection:
        with self.db.connect() as con:
            found = connection_store.find(con, str(name_or_id))
        if found is None:
            raise NotFoundError(f"there is no connection named {name_or_id!r}")
        return found

    def create_connection(
        self, draft: Connection, credential: CredentialInput | None = None
    ) -> tuple[Connection, Provisioned | None]:
        """Create a connection; push connections get provisioned credentials (returned
        once), pull connections store the credential that was entered (encrypted)."""
        draft = self._checked(draft)
        provisioned: Provisioned | None = None
        with self.db.transaction() as con:
            if connection_store.find(con, draft.name) is not None:
                raise InvalidInputError("name", f"a connection named {draft.name!r} already exists")
            created = connection_store.insert(con, draft)
            if draft.methodology in (Methodology.PUSH, Methodology.PULL_FROM_US):
                provisioned = self._provision(con, created, credential)
            elif credential is not None:
                self._store_remote(con, created, credential)
        return created, provisioned

    def update_connection(self, name_or_id: str | int, **changes: Any) -> Connection:
        current = self.connection(name_or_id)
        allowed = {f.name for f in fields(Connection)} - {
            "id",
            "status",
            "last_active",
            "created_at",
            "updated_at",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInputError(sorted(unknown)[0], "cannot be changed")
        for fixed in ("data_type", "direction", "method", "methodology"):
            if fixed in changes and str(changes[fixed]) != str(getattr(current, fixed)):
                # Credentials, folders and history depend on these: a different kind of
                # connection is a new connection.
                raise InvalidInputError(fixed, "cannot be changed after creation; create a new connection")
        updated = self._checked(replace(current, **changes))
        with self.db.transaction() as con:
            clash = connection_store.find(con, updated.name)
            if clash is not None and clash.id != current.id:
                raise InvalidInputError("name", f"a connection named {updated.name!r} already exists")
            return connection_store.update(con, updated)

    def delete_connection(self, name_or_id: str | int) -> None:
        """Delete a connection and its credentials; its runs, data and actions stay."""
        current = self.connection(name_or_id)
        with self.db.transaction() as con:
            connection_store.delete(con, current.id)

    def check_connection(self, draft: Connection) -> Connection:
        """Check a draft as create_connection would (the wizard validates step by step);
        returns it cleaned, or raises InvalidInputError naming the field."""
        checked = self._checked(draft)
        clash = next((c for c in self.connections() if c.name == checked.name), None)
        if clash is not None and clash.id != draft.id:
            raise InvalidInputError("name", f"a connection named {checked.name!r} already exists")
        return checked

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
        folder = c.folder
        if methodology is Methodology.PULL and method is not Method.EMAIL:
            if not folder or not PurePosixPath(folder).is_absolute():
                raise InvalidInputError(
                    "folder", "must be an absolute path such as /home/AcmeAdvertiser/Conversions"
                )
            if ".." in PurePosixPath(folder).parts:
                raise InvalidInputError("folder", "must not contain '..'")
            if not c.host:
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
        if c.schedule:
            _check_cron(c.schedule)
        try:
            zoneinfo.ZoneInfo(c.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidInputError(
                "timezone", f"{c.timezone!r} is not an IANA time zone such as America/New_York"
            ) from None
        if c.encoding:
            try:
                "".encode(c.encoding)
            except LookupError:
                raise InvalidInputError("encoding", f"unknown encoding {c.encoding!r}") from None
        try:
            csvplan.check_delimiter(c.delimiter)
        except ConfigurationError as exc:
            raise InvalidInputError("delimiter", str(exc)) from None
        if c.after_success not in ("leave", "archive", "delete"):
            raise InvalidInputError("after_success", "must be leave, archive or delete")
        if c.after_success == "archive" and not (c.archive_folder or "").startswith("/"):
            raise InvalidInputError("archive_folder", "must be an absolute path to archive into")
        return replace(
            c, name=name, direction=direction, method=method, methodology=methodology,
            pattern=pattern, return_email=(c.return_email or "").strip() or None,
        )  # fmt: skip

    # ------------------------------------------------------------------ credentials

    def _provision(self, con: Any, connection: Connection, given: CredentialInput | None) -> Provisioned:
        username = new_username(connection.name)
        password = new_password()
        email = None
        if connection.method is Method.EMAIL:
            email = self.inbound_address(connection)
        credential_store.add(
            con, connection_id=connection.id,
            name=(given.name if given else None) or f"{connection.name} login",
            kind="provisioned", username=username, password_hash=hash_password(password),
            return_email=(given.return_email if given else None) or connection.return_email,
        )  # fmt: skip
        port = {Method.SFTP: self.settings.sftp_port, Method.FTP: self.settings.ftp_port}.get(
            connection.method
        )
        return Provisioned(self.settings.bind, port, username, password, email)

    def _store_remote(self, con: Any, connection: Connection, given: CredentialInput) -> Credential:
        secret = given.private_key or given.password
        return credential_store.add(
            con, connection_id=connection.id, name=given.name or f"{connection.name} login",
            kind="remote", username=given.username,
            secret=self.box.encrypt(secret) if secret else None,
            return_email=given.return_email or connection.return_email,
        )  # fmt: skip

    def test_connection(
        self, draft: Connection, credential: CredentialInput, host_key: str | None = None
    ) -> list[RemoteFile]:
        """The wizard's *Test connection*: log in with the details entered (nothing is saved)
        and list what the connection would take now. Raises TransportError with the reason."""
        draft = self._checked(draft)
        is_key = bool(credential.private_key)
        endpoint = Endpoint(
            host=draft.host or "", port=draft.port, username=credential.username,
            password=None if is_key else credential.password,
            private_key=credential.private_key if is_key else None, host_key=host_key,
            options={"folder": draft.folder or "INBOX"} if draft.method is Method.EMAIL else {},
            timeout=15.0,
        )  # fmt: skip
        with open_transport(draft.method.value, endpoint) as transport:
            return transport.list_files(draft.folder or "", draft.pattern)

    def credentials(self, name_or_id: str | int) -> list[Credential]:
        connection = self.connection(name_or_id)
        with self.db.connect() as con:
            return credential_store.of_connection(con, connection.id)

    def add_credential(
        self, name_or_id: str | int, given: CredentialInput
    ) -> tuple[Credential, Provisioned | None]:
        """Re-connect: new details become main, older ones stay as secondary."""
        connection = self.connection(name_or_id)
        with self.db.transaction() as con:
            if connection.methodology in (Methodology.PUSH, Methodology.PULL_FROM_US):
                provisioned = self._provision(con, connection, given)
                return credential_store.of_connection(con, connection.id)[0], provisioned
            return self._store_remote(con, connection, given), None

    def _credential(self, credential_id: int) -> Credential:
        with self.db.connect() as con:
            try:
                return credential_store.get(con, credential_id)
            except LookupError:
                raise NotFoundError(f"there is no credential {credential_id}") from None

    def make_main_credential(self, credential_id: int) -> Credential:
        credential = self._credential(credential_id)
        with self.db.transaction() as con:
            credential_store.make_main(con, credential)
            return credential_store.get(con, credential_id)

    def delete_credential(self, credential_id: int) -> None:
        """Delete one credential; a provisioned login stops working at once."""
        credential = self._credential(credential_id)
        with self.db.transaction() as con:
            credential_store.delete(con, credential.id)
            remaining = credential_store.of_connection(con, credential.connection_id)
            if credential.is_main and remaining:
                credential_store.make_main(con, remaining[0])

    def accept_host_key(self, name_or_id: str | int) -> Credential:
        """A person checked the server's new host key: forget the pinned one, so the next
        run pins whatever the server presents (as after `ssh-keygen -R`)."""
        connection = self.connection(name_or_id)
        with self.db.transaction() as con:
            found = credential_store.main_secret(con, connection.id)
            if found is None:
                raise NotFoundError(f"{connection.name!r} has no credential")
            credential_store.set_host_key(con, found[0].id, None)
            credential_store.set_status(con, found[0].id, "Active", None)
            return credential_store.get(con, found[0].id)

    @staticmethod
    def host_key_fingerprint(host_key: str) -> str | None:
        """A pinned SFTP host key ("<type> <base64>") as OpenSSH prints it (SHA256:...),
        for a person to compare with the partner's; None when it cannot be read."""
        from connectbatch.transfer.pull import sftp

        try:
            return sftp.fingerprint(sftp.parse_host_key(host_key)[1])
        except ConnectBatchError:
            return None

    def inbound_address(self, connection: Connection) -> str:
        mailbox = self.settings.inbound_mailbox
        local, _, domain = mailbox.partition("@")
        slug = "".join(ch if ch.isalnum() else "-" for ch in connection.name.lower()).strip("-")
        return f"{local}+{slug or connection.id}@{domain}"

    # ------------------------------------------------------------------ runs

    def _inbound(self, name_or_id: str | int) -> Connection:
        connection = self.connection(name_or_id)
        if connection.direction is not Direction.INBOUND:
            raise InvalidInputError(
                "connection", f"{connection.name!r} is outbound: it sends files, it does not receive them"
            )
        return connection

    def ingest_file(self, name_or_id: str | int, path: str | Path, trigger: str = "cli") -> Run:
        connection = self._inbound(name_or_id)
        p = Path(path)
        if not p.is_file():
            raise NotFoundError(f"there is no file {str(path)!r}")
        return self.ingestor.ingest(
            connection, ingest.Received(p.name, p, "cli" if trigger == "cli" else trigger), trigger
        )

    def ingest_bytes(self, name_or_id: str | int, filename: str, data: bytes, trigger: str = "upload") -> Run:
        connection = self._inbound(name_or_id)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload"
            path.write_bytes(data)
            return self.ingestor.ingest(
                connection, ingest.Received(_safe_name(filename), path, trigger), trigger
            )

    def runs(self, name_or_id: str | int | None = None, limit: int = 200) -> list[Run]:
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        with self.db.connect() as con:
            return run_store.history(con, connection_id, limit)

    def run(self, run_id: int) -> Run:
        with self.db.connect() as con:
            try:
                return run_store.get(con, run_id)
            except LookupError:
                raise NotFoundError(f"there is no run {run_id}") from None

    def run_files(self, run_id: int) -> list[FileRecord]:
        self.run(run_id)
        with self.db.connect() as con:
            return run_store.files_of_run(con, run_id)

    def rejects(self, run_id: int, limit: int | None = None) -> list[RejectRow]:
        self.run(run_id)
        with self.db.connect() as con:
            return run_store.rejects_of_run(con, run_id, limit)

    def count_rejects(self, run_id: int) -> int:
        self.run(run_id)
        with self.db.connect() as con:
            return run_store.count_rejects(con, run_id)

    def validation(self, run_id: int) -> list[tuple[int, ValidationReport]]:
        self.run(run_id)
        with self.db.connect() as con:
            stored = run_store.validation_of_run(con, run_id)
        return [(file_id, ValidationReport.from_json(report)) for file_id, _ok, report in stored]

    def reject_rates(self) -> list[tuple[str, dt.datetime, float]]:
        with self.db.connect() as con:
            return run_store.reject_rates(con)

    def review_queue(self, limit: int = 200) -> list[RunReview]:
        """Runs for data-quality review, most urgent first: quarantined, critical failures,
        warnings, failed before validation, clean (see connectbatch.pipeline.review)."""
        with self.db.connect() as con:
            return review_store.queue(con, limit)

    def run_results_files(self, run_id: int) -> list[Path]:
        """The results CSV and summary JSON written for each file of a run."""
        run = self.run(run_id)
        with self.db.connect() as con:
            files = run_store.files_of_run(con, run_id)
        bases = tuple(results.base_name(run_id, f.id, f.name) + "." for f in files)
        return [
            p for p in results.list_files(self.settings.outbound, run.connection_id)
            if p.name.startswith(bases)
        ]  # fmt: skip

    def results_files(self, name_or_id: str | int) -> list[Path]:
        return results.list_files(self.settings.outbound, self.connection(name_or_id).id)

    def pull(self, name_or_id: str | int, trigger: str = "manual") -> Run:
        """Run now: one pull from the partner's server or mailbox."""
        connection = self._inbound(name_or_id)
        if connection.methodology is not Methodology.PULL:
            raise InvalidInputError(
                "connection",
                f"{connection.name!r} is push: files arrive on their own, there is nothing to pull",
            )
        run = collect.pull(self.ingestor, self.box, connection, trigger)
        assert run is not None  # only quiet polls return None
        return run

    def export(self, name_or_id: str | int, start: dt.datetime, end: dt.datetime) -> Path:
        """Write the connection's data type for [start, end) as CSV into its outbound folder,
        where its "Pull from us" login collects it."""
        connection = self.connection(name_or_id)
        if connection.direction is not Direction.OUTBOUND:
            raise InvalidInputError(
                "connection", f"{connection.name!r} is inbound; exports go to outbound connections"
            )
        if end <= start:
            raise InvalidInputError("end", "must be after the start")
        folder = self.settings.outbound / str(connection.id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"export-{connection.data_type}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.csv"
        with self.db.connect() as con:
            exports.export_csv(con, connection.data_type, start, end, target)
        return target

    def retry(self, run_id: int) -> Run:
        self._connection_of_run(run_id)
        return self.ingestor.retry(run_id)

    def _connection_of_run(self, run_id: int) -> Connection:
        run = self.run(run_id)
        with self.db.connect() as con:
            try:
                return connection_store.get(con, run.connection_id)
            except LookupError:
                raise NotFoundError(
                    f"the connection of run {run_id} was deleted; its files cannot be processed again"
                ) from None

    def quarantined(self) -> list[Run]:
        with self.db.connect() as con:
            return run_store.quarantined(con)

    def release(self, run_id: int, note: str | None = None, actor: str = "reviewer") -> Run:
        self._connection_of_run(run_id)
        return self.ingestor.release(run_id, note, actor)

    def discard(self, run_id: int, note: str | None = None, actor: str = "reviewer") -> Run:
        self.run(run_id)
        return self.ingestor.discard(run_id, note, actor)

    def dry_run(
        self, data: bytes, data_type: str, **options: Any
    ) -> tuple[csvparse.ParseResult, ValidationReport]:
        """What a file would give, without storing anything."""
        parsed = csvparse.parse_bytes(data, data_type, **options)
        report = validation.validate(
            parsed.table, data_type, rows_rejected=parsed.rows_rejected, now=self.clock(),
            max_age_days=self.settings.validation_max_age_days, max_reject_rate=self.settings.max_reject_rate,
        )  # fmt: skip
        return parsed, report

    # ------------------------------------------------------------------ call data

    def call_filter_options(self) -> CallFilterOptions:
        """What the explorer's filters offer: DISTINCT values of the loaded calls."""
        with self.db.connect() as con:
            return call_store.filter_options(con)

    def call_summary(
        self, flt: CallFilter, duration: DurationColumn = "CallDuration", top: int = 10
    ) -> CallSummary:
        """KPIs, calls per day by status, the busiest media partners and the duration
        distribution of the calls a filter selects (all aggregated by DuckDB)."""
        flt = _call_filter(flt)
        if duration not in call_store.DURATION_COLUMNS:
            raise InvalidInputError("duration", f"must be one of {', '.join(call_store.DURATION_COLUMNS)}")
        with self.db.connect() as con:
            return CallSummary(
                kpis=call_store.kpis(con, flt),
                per_day=call_store.per_day(con, flt),
                top_media=call_store.top_media(con, flt, top),
                durations=call_store.durations(con, flt, duration),
            )

    def call_rows(self, flt: CallFilter, page: int = 1, page_size: int = 50) -> pa.Table:
        """One page (from 1) of the calls a filter selects, newest first, with their action."""
        if page < 1:
            raise InvalidInputError("page", "pages are numbered from 1")
        if not 1 <= page_size <= 1000:
            raise InvalidInputError("page_size", "must be between 1 and 1000 rows")
        flt = _call_filter(flt)
        with self.db.connect() as con:
            return call_store.page(con, flt, page_size, (page - 1) * page_size)

    def export_calls_csv(self, flt: CallFilter, target: Path) -> int:
        """Write every call a filter selects (all columns, then its action) to `target` as
        CSV; returns the number of rows. The file appears complete or not at all."""
        flt = _call_filter(flt)
        target = Path(target)
        tmp = target.with_name("." + target.name + ".tmp")
        try:
            with self.db.connect() as con:
                count = call_store.export_csv(con, flt, tmp)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return count

    # ------------------------------------------------------------------ actions

    def actions(
        self,
        name_or_id: str | int | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Action]:
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        if status is not None:
            status = _status(status)
        with self.db.connect() as con:
            return action_store.search(
                con, connection_id=connection_id, status=status, limit=limit, offset=offset
            )

    def count_actions(self, name_or_id: str | int | None = None, status: str | None = None) -> int:
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        with self.db.connect() as con:
            return action_store.count(
                con, connection_id=connection_id, status=_status(status) if status else None
            )

    def action(self, action_id: str | int) -> Action:
        ident = lifecycle.parse_action_id(action_id)
        with self.db.connect() as con:
            found = action_store.get(con, ident)
        if found is None:
            raise NotFoundError(f"there is no action A-{ident:06d}")
        return found

    def audit(self, action_id: str | int) -> list[AuditEntry]:
        ident = self.action(action_id).id
        with self.db.connect() as con:
            return action_store.audit(con, ident)

    def modify_action(
        self, action_id: str | int, amount: Decimal | str | float, reason: str | None, actor: str
    ) -> Action:
        ident = lifecycle.parse_action_id(action_id)
        with self.db.transaction() as con:
            return lifecycle.modify(con, ident, amount, reason=reason, actor=actor, now=self.clock())

    def reverse_action(self, action_id: str | int, reason: str, actor: str) -> Action:
        ident = lifecycle.parse_action_id(action_id)
        with self.db.transaction() as con:
            return lifecycle.reverse(con, ident, reason=reason, actor=actor, now=self.clock())

    def lock_actions(self, now: dt.datetime | None = None) -> int:
        with self.db.transaction() as con:
            return lifecycle.lock_due(con, now or self.clock())

    def find_actions(
        self,
        name_or_id: str | int | None = None,
        statuses: tuple[str, ...] = (),
        search: str | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> ActionPage:
        """A page (from 1) of actions, newest first. `search` finds an action id (A-000123,
        123) or a part of the sender's source key (CallSessionId, OrderId)."""
        if page < 1:
            raise InvalidInputError("page", "pages are numbered from 1")
        if not 1 <= page_size <= 1000:
            raise InvalidInputError("page_size", "must be between 1 and 1000 rows")
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        wanted = tuple(_status(s) for s in statuses)
        text = (search or "").strip() or None
        action_id = None
        if text is not None:
            with contextlib.suppress(lifecycle.ActionError):  # not an id: a source key only
                action_id = lifecycle.parse_action_id(text)
        now = self.clock()
        with self.db.connect() as con:
            found, total = call_store.search_actions(
                con, connection_id=connection_id, statuses=wanted, action_id=action_id, text=text,
                limit=page_size, offset=(page - 1) * page_size,
            )  # fmt: skip
        return ActionPage(found, total, now)

    def change_actions(
        self,
        action_ids: list[int],
        *,
        reverse: bool,
        amount: Decimal | str | float | None = None,
        reason: str | None = None,
        actor: str,
    ) -> list[ActionOutcome]:
        """Modify (new amount) or reverse each action on its own: one that cannot change
        (locked, already reversed) fails with the reason and the others still change."""
        actor = (actor or "").strip()
        reason = (reason or "").strip() or None
        if not action_ids:
            raise InvalidInputError("actions", "select at least one action")
        if not actor:
            raise InvalidInputError("actor", "say who makes the change: it goes into the audit trail")
        if reverse and reason is None:
            raise InvalidInputError("reason", "is required to reverse an action")
        if not reverse and amount is None:
            raise InvalidInputError("amount", "is required to modify an action")
        outcomes: list[ActionOutcome] = []
        for ident in action_ids:
            try:
                if reverse:
                    changed = self.reverse_action(ident, reason or "", actor)
                    message = "reversed"
                else:
                    assert amount is not None
                    changed = self.modify_action(ident, amount, reason, actor)
                    message = f"amount is now {changed.amount}"
                outcomes.append(ActionOutcome(changed.id, True, message, changed))
            except ConnectBatchError as exc:
                outcomes.append(ActionOutcome(ident, False, str(exc)))
        return outcomes


def _enum(kind: Any, value: Any, field_name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidInputError(field_name, f"{value!r} is not one of {allowed}") from None


def _call_filter(flt: CallFilter) -> CallFilter:
    if flt.start is not None and flt.end is not None and flt.end < flt.start:
        raise InvalidInputError("end", "the last day is before the first day")
    return replace(
        flt, statuses=tuple(s.strip().upper() for s in flt.statuses),
        countries=tuple(c.strip().upper() for c in flt.countries),
        providers=tuple(p.strip() for p in flt.providers),
    )  # fmt: skip


def _status(status: str) -> str:
    upper = status.strip().upper()
    if upper not in ("PENDING", "MODIFIED", "REVERSED", "LOCKED"):
        raise InvalidInputError("status", "must be PENDING, MODIFIED, REVERSED or LOCKED")
    return upper


def _check_cron(expression: str) -> None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise InvalidInputError("schedule", f"{expression!r} is not a cron expression ({exc})") from None


def _safe_name(name: str) -> str:
    """A file name as shown and stored: last path part, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip() or "upload.csv"
    return cleaned[:200]
