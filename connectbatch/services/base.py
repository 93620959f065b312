"""What every domain of the façade shares: the settings, the database, the clock and the
ingestor, finding a connection or a run by name or id, and the errors a person can cause."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from connectbatch.errors import ConnectBatchError
from connectbatch.models import (
    ROLE_LABELS,
    Connection,
    Direction,
    Role,
    Run,
    User,
)
from connectbatch.pipeline import ingest
from connectbatch.pipeline.outbox import Outbox
from connectbatch.secrets import SecretBox
from connectbatch.settings import Settings
from connectbatch.store import Database
from connectbatch.store import connections as connection_store
from connectbatch.store import credentials as credential_store
from connectbatch.store import partners as partner_store
from connectbatch.store import runs as run_store
from connectbatch.transfer.specs import AuthKind


class NotFoundError(ConnectBatchError, LookupError):
    """A connection, run or action that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# Who the audit trail names for the lock job and for a modifications file ("file:12"): a
# person's --actor may not pose as either.
SYSTEM_ACTOR, FILE_ACTOR = "system", "file:"


class InvalidInputError(ConnectBatchError, ValueError):
    """A field a person entered has a value we cannot use; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class PermissionDeniedError(ConnectBatchError, PermissionError):
    """The logged-in user's role does not allow this call (DESIGN.md, roles)."""


F = TypeVar("F", bound=Callable[..., Any])


def requires(*roles: Role) -> Callable[[F], F]:
    """Allow the decorated service method only to users with one of `roles` (admin always;
    no user, the local operator of the CLI and engine, always). Checked here, in the service
    layer, so a page reached by any route still cannot do what the role may not."""

    def decorate(method: F) -> F:
        what = method.__name__.replace("_", " ")

        @functools.wraps(method)
        def checked(self: ServiceBase, /, *args: Any, **kwargs: Any) -> Any:
            self.check_role(what, *roles)
            return method(self, *args, **kwargs)

        checked.__dict__["required_roles"] = frozenset(roles)
        return cast(F, checked)

    return decorate


@dataclass(frozen=True)
class Provisioned:
    """Login details we created for a partner: shown once, never retrievable again."""

    host: str
    port: int | None
    username: str
    password: str
    email_address: str | None = None
    # SHA256 of our SFTP host key, for the partner to pin on first login (SFTP logins only).
    host_key_fingerprint: str | None = None
    # SHA256 of our FTPS certificate (FTP logins), for the partner to pin.
    certificate_fingerprint: str | None = None

    @property
    def connect_with(self) -> str | None:
        """How an FTP login connects, where our server requires TLS (it has a certificate):
        a partner given host and port alone tried plain FTP and got "530 Access denied"."""
        if not self.certificate_fingerprint:
            return None
        return f"explicit FTPS (AUTH TLS, then PROT P): ftpes://{self.host}:{self.port}/"


@dataclass(frozen=True)
class CredentialInput:
    """Login details a person entered for a pull connection (their server)."""

    name: str
    username: str | None = None
    password: str | None = None
    private_key: str | None = None
    return_email: str | None = None
    # Password or SSH key, as the person chose; None: whichever secret was given.
    auth: AuthKind | None = None
    passphrase: str | None = None  # of an encrypted private key


def _enum(kind: Any, value: Any, field_name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidInputError(field_name, f"{value!r} is not one of {allowed}") from None


class ServiceBase:
    """The state every domain mixin reads; `Services.__init__` sets it."""

    settings: Settings
    db: Database
    clock: ingest.Clock
    ingestor: ingest.Ingestor
    outbox: Outbox  # mail to partners and owners (pipeline/outbox.py)
    _box: SecretBox | None
    user: User | None  # None: the local operator (CLI, engine, tests), who may do everything
    # The partner (a name; created as a brand when missing) that a new connection joins when
    # its creator names none. None in the product: a partner is required. The test harness
    # sets it so tests written before partners existed still create connections.
    default_partner: str | None = None

    def check_role(self, what: str, *roles: Role) -> None:
        """Raise PermissionDeniedError unless the bound user has one of `roles`."""
        user = self.user
        if user is None or user.may(*roles):
            return
        needed = " or ".join(ROLE_LABELS[r] for r in roles) or ROLE_LABELS[Role.ADMIN]
        raise PermissionDeniedError(
            f"{user.name} ({ROLE_LABELS[user.role]}) may not {what}: that needs the {needed} role"
        )

    def actor(self, given: str | None = None) -> str:
        """Who the audit trail names: the logged-in user, else what the caller says (the CLI's
        --actor or its default)."""
        if self.user is not None:
            return self.user.name
        who = (given or "").strip()
        if who.lower() == SYSTEM_ACTOR or who.lower().startswith(FILE_ACTOR):
            raise InvalidInputError(
                "actor", f"{who!r} names the lock job or a file in the audit trail; give a person's name"
            )
        return who

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.for_home(self.settings.home, self.settings.secret_key)
        return self._box

    def connection(self, name_or_id: str | int) -> Connection:
        """By name (a person's words: exact, then any case, then a number as an id), or by
        id when given an int (the code's own references: one lookup instead of three)."""
        with self.db.connect() as con:
            if isinstance(name_or_id, int):
                found = connection_store.get_or_none(con, name_or_id)
            else:
                found = connection_store.find(con, name_or_id)
        if found is None:
            raise NotFoundError(f"there is no connection named {name_or_id!r}")
        return found

    def _return_address(self, connection: Connection) -> str | None:
        """Where answers to the partner go (results, dry runs, status files): the main
        credential's return address, else the connection's, else its partner's. The one rule:
        a partner set up with only its own address once got status mail but no results."""
        with self.db.connect() as con:
            creds = credential_store.of_connection(con, connection.id)
            partner = (
                partner_store.get(con, connection.partner_id) if connection.partner_id is not None else None
            )
        found = next((c.return_email for c in creds if c.is_main and c.return_email), None)
        return found or connection.return_email or (partner.return_email if partner else None)

    def run(self, run_id: int) -> Run:
        with self.db.connect() as con:
            try:
                return run_store.get(con, run_id)
            except LookupError:
                raise NotFoundError(f"there is no run {run_id}") from None

    def _inbound(self, name_or_id: str | int) -> Connection:
        connection = self.connection(name_or_id)
        if connection.direction is not Direction.INBOUND:
            raise InvalidInputError(
                "connection", f"{connection.name!r} is outbound: it sends files, it does not receive them"
            )
        return connection

    def _connection_of_run(self, run_id: int) -> Connection:
        run = self.run(run_id)
        with self.db.connect() as con:
            try:
                return connection_store.get(con, run.connection_id)
            except LookupError:
                raise NotFoundError(
                    f"the connection of run {run_id} was deleted; its files cannot be processed again"
                ) from None
