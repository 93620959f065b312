"""The Create-connection wizard's state: the step, the connection and the credential as
entered so far, and the problem to show. No Streamlit here, so unit tests drive the wizard's
rules (which step shows which field, what Next refuses) with a real `Services`.

Everything a person entered is kept, even when a later choice hides it (an SFTP fingerprint
survives a detour through FTP); `connection()` and `credential_input()` give what applies to
the current choices, and only that is checked and created.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from connectbatch.errors import ConnectBatchError
from connectbatch.models import DEFAULT_SCHEDULE, Connection, Direction, Method, Methodology, PartnerType
from connectbatch.services import CredentialInput, InvalidInputError, Provisioned, Services
from connectbatch.transfer.specs import AuthKind, TransferSpec, default_spec, spec_type

NEW_PARTNER = ""  # the partner choice that creates one (named after the connection if unnamed)
STEPS = ("Name and direction", "Data type", "Method", "Credentials", "Create")
CREDENTIAL_NAME = "credential_name"  # the wizard's own field: the name of the login

# Which step shows the field an InvalidInputError names; any other field: the last step.
FIELD_STEP = {
    "name": 1, "direction": 1, "partner": 1, "data_type": 2, "method": 3, "methodology": 3, "pattern": 3,
    "folder": 3, "host": 3, "port": 3, "transfer": 3,
    # the method's typed settings sit beside the location they reach
    "tls": 3, "verify": 3, "ca_file": 3, "passive": 3, "security": 3, "processed_flag": 3,
    "move_to": 3, "recipient": 3, "host_key_fingerprint": 3, "ciphers": 3, "request_size": 3,
    "allowed_senders": 3,
    "username": 4, "password": 4, "private_key": 4, "auth": 4, "passphrase": 4,
}  # fmt: skip
FIELD_STEP["reuse_credential"] = 4  # credentials reuse: the choice sits on the credentials step
LAST_STEP_FIELDS = frozenset(
    {
        CREDENTIAL_NAME,
        "return_email",
        "schedule",
        "lock_days",
        "min_age_seconds",
        "timezone",
        "encoding",
        "delimiter",
        "after_success",
        "archive_folder",
        "late_events",
    }
)
_CONNECTION_FIELDS = frozenset(f.name for f in fields(Connection))
_CREDENTIAL_FIELDS = frozenset(f.name for f in fields(CredentialInput))


def _blank() -> Connection:
    # the schedule is kept only for a pull or an outbound connection (`connection`)
    return Connection(
        name="", data_type="call_conversions", direction=Direction.INBOUND, method=Method.SFTP,
        methodology=Methodology.PUSH, pattern="*.csv", schedule=DEFAULT_SCHEDULE,
    )  # fmt: skip


@dataclass
class WizardState:
    """One person's way through the wizard (kept in the Streamlit session)."""

    step: int = 1
    draft: Connection = field(default_factory=_blank)
    login: CredentialInput = field(default_factory=lambda: CredentialInput(name=""))
    key_file_name: str | None = None  # the uploaded private key's file name, to show
    samples: str = ""  # file names typed into the pattern preview
    error: tuple[str, str] | None = None  # (field, message) shown next to the field it names
    tested: tuple[str, Any] | None = None  # ("ok", rows) | ("error", message)
    partner: str = NEW_PARTNER  # an existing partner's name, or NEW_PARTNER
    new_partner_name: str = ""  # for NEW_PARTNER; empty: named after the connection
    new_partner_type: PartnerType = PartnerType.BRAND
    # Credentials reuse: the id of the partner's existing credential set chosen on the
    # credentials step instead of new ones (None: create new).
    reuse_credential: int | None = None

    # ------------------------------------------------------------------ entering values

    def apply(self, values: dict[str, Any]) -> None:
        """Keep what a step's widgets hold: Connection fields by their names, the login's
        fields as `login`, the preview's names as `samples`. Nothing is checked here."""
        if "login" in values:
            self.login = values["login"]
        if "key_file_name" in values:
            self.key_file_name = values["key_file_name"]
        if "samples" in values:
            self.samples = str(values["samples"] or "")
        if "reuse_credential" in values:
            self.reuse_credential = values["reuse_credential"]
        if "partner" in values:
            self.partner = str(values["partner"] or NEW_PARTNER)
        if "new_partner_name" in values:
            self.new_partner_name = str(values["new_partner_name"] or "")
        if "new_partner_type" in values:
            self.new_partner_type = PartnerType(values["new_partner_type"])
        changes = {k: v for k, v in values.items() if k in _CONNECTION_FIELDS}
        if changes:
            self.draft = replace(self.draft, **changes)

    # ------------------------------------------------------------------ choices

    def method_options(self) -> list[Method]:
        if self.draft.direction is Direction.OUTBOUND:
            return [Method.SFTP, Method.FTP]  # partners collect over SFTP or FTP
        return [Method.EMAIL, Method.SFTP, Method.FTP]

    def methodology_options(self) -> list[Methodology]:
        if self.draft.direction is Direction.OUTBOUND:
            return [Methodology.PULL_FROM_US]
        return [Methodology.PUSH, Methodology.PULL]

    def method(self) -> Method:
        options = self.method_options()
        return self.draft.method if self.draft.method in options else options[0]

    def methodology(self) -> Methodology:
        options = self.methodology_options()
        return self.draft.methodology if self.draft.methodology in options else options[0]

    def is_pull(self) -> bool:
        return self.methodology() is Methodology.PULL

    def transfer(self) -> TransferSpec:
        """The settings entered for the chosen method, or its defaults."""
        spec = self.draft.transfer
        return spec if isinstance(spec, spec_type(self.method())) else default_spec(self.method())

    def connection(self) -> Connection:
        """The connection as entered so far, with only what applies to the choices made."""
        d, pull, method = self.draft, self.is_pull(), self.method()
        inbound = d.direction is Direction.INBOUND
        after = d.after_success if pull else "leave"
        folder = (d.folder or "").strip()
        if pull and method is Method.EMAIL:
            folder = folder or "INBOX"
        return replace(
            d, name=(d.name or "").strip(), method=method, methodology=self.methodology(),
            host=_text(d.host) if pull else None,
            port=int(d.port) if pull and d.port else None,
            folder=folder or None if pull else None,
            pattern=(d.pattern or "").strip(),
            return_email=_text(d.return_email) if inbound else None,
            schedule=_text(d.schedule) if pull or not inbound else None,
            lock_days=int(d.lock_days or 0),
            min_age_seconds=int(d.min_age_seconds or 0) if pull else 0,
            timezone=d.timezone or "UTC", encoding=d.encoding or None, delimiter=d.delimiter or ",",
            after_success=after,
            archive_folder=_text(d.archive_folder) if after == "archive" else None,
            transfer=self.transfer() if pull else None,
        )  # fmt: skip

    def credential_name(self) -> str:
        return self.login.name.strip() if self.login.name.strip() else f"{self.connection().name} login"

    def credential_input(self) -> CredentialInput:
        """The login as chosen: a key (SFTP only) or a password, never both."""
        given = self.login
        use_key = self.method() is Method.SFTP and given.auth is AuthKind.KEY
        return CredentialInput(
            name=self.credential_name(),
            username=_text(given.username),
            password=None if use_key else (given.password or None),
            private_key=given.private_key if use_key else None,
            return_email=_text(self.draft.return_email),
            auth=AuthKind.KEY if use_key else AuthKind.PASSWORD,
            passphrase=(given.passphrase or None) if use_key else None,
        )

    def partner_name(self) -> str:
        """The partner the connection will belong to (a new one is named after the connection
        unless a name was typed)."""
        if self.partner != NEW_PARTNER:
            return self.partner
        return self.new_partner_name.strip() or self.connection().name

    def _partner_problem(self, services: Services) -> tuple[str, str] | None:
        if self.partner != NEW_PARTNER:
            if all(p.name != self.partner for p in services.partners()):
                return "partner", f"{self.partner!r} no longer exists: choose another"
            return None
        # A new partner is named as typed, else after the connection: either name taken by a
        # partner is refused, never taken as that partner (an outbound connection named like
        # a partner then exported that partner's rows to the new login; app audit).
        name = self.partner_name()
        if name and any(p.name.lower() == name.lower() for p in services.partners()):
            if self.new_partner_name.strip():
                return "partner", f"a partner named {name!r} already exists: choose it in the list"
            return "partner", (
                f"a partner named {name!r} already exists: choose it in the list, or name the new "
                "partner (a new partner is named after the connection unless named)"
            )
        return None

    # ------------------------------------------------------------------ checks & navigation

    def problem(self, services: Services, upto: int) -> tuple[str, str] | None:
        """The first problem in steps 1..upto as (field, message), or None."""
        d = self.connection()
        if upto >= 3 and self.is_pull() and d.method is Method.EMAIL and not d.host:
            return "host", "the IMAP host of the mailbox to read, e.g. imap.example.com"
        if upto >= 4 and self.is_pull() and self.reuse_credential is None:
            given = self.credential_input()
            if not given.username:
                return "username", "is required to log in to the partner's server"
            if given.auth is AuthKind.KEY:
                if not given.private_key:
                    return "private_key", "upload the private key file (OpenSSH or PEM)"
            elif not given.password:
                return "password", "is required to log in to the partner's server"
        if upto >= 5 and not self.login.name.strip() and self.reuse_credential is None:
            return CREDENTIAL_NAME, "is required"
        if self.connection().name:
            found = self._partner_problem(services)
            if found is not None:
                return found
        try:
            services.check_connection(d)
        except InvalidInputError as exc:
            if step_of(exc.field) <= upto:
                return exc.field, message_of(exc)
        except ConnectBatchError as exc:
            return "", str(exc)
        return None

    def next(self, services: Services) -> bool:
        """Check the steps so far; go on when they are fine. False: `error` says why."""
        self.tested = None
        self.error = self.problem(services, self.step)
        if self.error is None:
            self.step = min(self.step + 1, len(STEPS))
        return self.error is None

    def back(self) -> None:
        self.error = None
        self.tested = None
        self.step = max(self.step - 1, 1)

    def create(self, services: Services) -> tuple[Connection, Provisioned | None] | None:
        """Create the connection; None when a field is wrong (`error` and `step` point at it)."""
        found = self.problem(services, len(STEPS))
        if found is None:
            added = None
            try:
                name = self.partner_name()
                if self.partner == NEW_PARTNER:  # its name is free (`_partner_problem`)
                    added = services.add_partner(name, self.new_partner_type)
                if self.reuse_credential is not None:  # nothing new to store, nothing to show
                    return services.create_connection(
                        self.connection(), partner=name, reuse_credential=self.reuse_credential
                    )
                return services.create_connection(self.connection(), self.credential_input(), partner=name)
            except InvalidInputError as exc:
                if added is not None:  # the partner came with the connection: not without it
                    services.delete_partner(added.id)
                found = ("partner" if exc.field in ("type",) else exc.field, message_of(exc))
        self.error = found
        self.step = step_of(found[0])
        return None


def step_of(field_name: str) -> int:
    return FIELD_STEP.get(field_name, len(STEPS))


def message_of(exc: InvalidInputError) -> str:
    """The message without the `field: ` in front (the screen puts the field's label there)."""
    text = str(exc)
    return text.removeprefix(f"{exc.field}: ")


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None
