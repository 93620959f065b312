"""The façade the UI pages and the CLI call: no SQL and no protocol code above this line.

One module per domain (connections, credentials, runs, review, calls, actions), each a mixin
of `Services`, so a page or CLI command calls one object whatever the domain.

Every method opens the database for the length of one operation (see store/db.py), so the
app, `connectbatch serve` and the CLI can share a data directory. Input is checked here,
once, with messages that name the field and say what is expected.
"""

from __future__ import annotations

import copy

from connectbatch.models import Run, User
from connectbatch.pipeline import ingest, mailer
from connectbatch.secrets import SecretBox
from connectbatch.services.actions import ActionServices
from connectbatch.services.base import (
    CredentialInput,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    Provisioned,
)
from connectbatch.services.browse import BrowseServices
from connectbatch.services.calls import CallServices
from connectbatch.services.connections import ConnectionServices
from connectbatch.services.delivery import DeliveryServices
from connectbatch.services.mappings import MappingServices
from connectbatch.services.partners import PartnerServices
from connectbatch.services.review import ReviewServices
from connectbatch.services.runs import RunServices
from connectbatch.services.sessions import SessionServices
from connectbatch.services.syncback import SyncBackServices
from connectbatch.services.triage import TriageServices
from connectbatch.services.users import AuthenticationError, UserServices
from connectbatch.settings import Settings
from connectbatch.store import Database
from connectbatch.store import connections as connection_store

__all__ = [
    "AuthenticationError",
    "CredentialInput",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "Provisioned",
    "Services",
]


class Services(
    ConnectionServices,
    RunServices,
    ReviewServices,
    CallServices,
    ActionServices,
    UserServices,
    SessionServices,
    BrowseServices,
    PartnerServices,
    DeliveryServices,
    MappingServices,
    TriageServices,
    SyncBackServices,
):
    """The façade: one domain mixin per concern (connections, credentials, runs, review,
    call data, actions, users, partners, triage), composed so pages and the CLI call one object.

    `user` is who calls: None is the local operator (CLI, engine, tests) with every right;
    the app binds the logged-in user with `as_user`, and each mutating method checks that
    user's role (`services.base.requires`)."""

    def __init__(
        self, settings: Settings | None = None, clock: ingest.Clock = ingest.utcnow, user: User | None = None
    ) -> None:
        self.user = user
        self.settings = settings or Settings.from_env()
        self.db = Database(self.settings.database, self.settings.lock_timeout, self.settings.db_linger)
        self.clock = clock
        self.ingestor = ingest.Ingestor(self.settings, self.db, clock)
        self._box: SecretBox | None = None
        self.smtp = self.settings.smtp
        self.outbox = self.ingestor.outbox
        if self.smtp is not None:
            self.ingestor.on_finished.append(self._email_results)

    def as_user(self, user: User | None) -> Services:
        """The same services (database, ingestor, engine hooks shared) acting for `user`."""
        bound = copy.copy(self)
        bound.user = user
        return bound

    def startup(self) -> list[int]:
        """Call once when a long-running process starts: fails runs a dead process left, and
        publishes the exports it left recorded but hidden."""
        failed = self.ingestor.recover_interrupted()
        self._settle_exports()
        return failed

    def _email_results(self, run: Run) -> None:
        """Queue a finished inbound run's results for the partner's return address
        (`_return_address`: the main credential's, the connection's, the partner's)."""
        if self.smtp is None:
            return
        with self.db.connect() as con:
            connection = connection_store.get(con, run.connection_id)
        to = self._return_address(connection)
        if not to:
            return
        files = mailer.results_of_run(self.settings.outbound, connection.id, run.id)
        message = mailer.compose(self.smtp, to, connection, run, files)
        self.outbox.put(message, kind="results", connection_id=connection.id, run_id=run.id)
