"""Data-quality review: validation reports, the review queue, quarantine release and discard,
and the dry run of a file that stores nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from connectbatch.models import (
    Connection,
    ReviewState,
    Role,
    Run,
)
from connectbatch.parser import api as csvparse
from connectbatch.pipeline import dryrun, validation
from connectbatch.pipeline.dryrun import DryRun
from connectbatch.pipeline.review import RunReview
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.services.base import (
    ServiceBase,
    requires,
)
from connectbatch.services.calls import partner_ids
from connectbatch.services.triage import lock_deadlines
from connectbatch.store import credentials as credential_store
from connectbatch.store import partners as partner_store
from connectbatch.store import reviews as review_store
from connectbatch.store import runs as run_store


class ReviewServices(ServiceBase):
    def validation(self, run_id: int) -> list[tuple[int, ValidationReport]]:
        self.run(run_id)
        with self.db.connect() as con:
            stored = run_store.validation_of_run(con, run_id)
        return [(file_id, ValidationReport.from_json(report)) for file_id, _ok, report in stored]

    def reject_rates(
        self, partners: tuple[int, ...] = (), limit: int = 1000
    ) -> list[tuple[str, dt.datetime, float]]:
        """The reject rate of the last `limit` runs that read rows (of `partners`' connections)."""
        with self.db.connect() as con:
            return run_store.reject_rates(con, partner_ids(partners), limit)

    def review_queue(self, limit: int = 200, partners: tuple[int, ...] = ()) -> list[RunReview]:
        """Runs for data-quality review, most urgent first: quarantined, critical failures,
        warnings, failed before validation, clean (see connectbatch.pipeline.review), each
        held batch with its lock deadline; with `partners`, only the runs of connections
        belonging to one of those partner ids."""
        with self.db.connect() as con:
            queue = review_store.queue(con, limit, partner_ids(partners))
            if any(q.review_state == ReviewState.QUARANTINED for q in queue):
                deadlines = lock_deadlines(self.settings, con)
                for q in queue:
                    q.lock_deadline = deadlines.get(q.run.id)
        return queue

    def quarantined(self) -> list[Run]:
        with self.db.connect() as con:
            return run_store.quarantined(con)

    @requires(Role.REVIEWER)
    def release(self, run_id: int, note: str | None = None, actor: str = "reviewer") -> Run:
        """Load a quarantined batch as it is; `actor` is kept with the run unless a user is
        logged in, whose name is kept instead."""
        self._connection_of_run(run_id)
        return self.ingestor.release(run_id, note, self.actor(actor) or "reviewer")

    @requires(Role.REVIEWER)
    def discard(self, run_id: int, note: str | None = None, actor: str = "reviewer") -> Run:
        # As release: a batch of a connection deleted before the delete refused to (held
        # batches) is said in words, not "unexpected LookupError: no connection with id 3".
        self._connection_of_run(run_id)
        return self.ingestor.discard(run_id, note, self.actor(actor) or "reviewer")

    @requires(Role.REVIEWER)
    def dry_run(
        self, data: bytes, data_type: str, **options: Any
    ) -> tuple[csvparse.ParseResult, ValidationReport]:
        """What a file would give, without storing anything."""
        parsed = csvparse.parse_bytes(data, data_type, **options)
        report = validation.validate(
            parsed.table, data_type, rows_rejected=parsed.lines_rejected, now=self.clock(),
            max_age_days=self.settings.validation_max_age_days, max_reject_rate=self.settings.max_reject_rate,
            lines=parsed.lines,
        )  # fmt: skip
        return parsed, report

    @requires(Role.REVIEWER, Role.ANALYST)
    def dry_run_file(
        self,
        name_or_id: str | int,
        path: str | Path,
        file_name: str | None = None,
        *,
        source: str = "app",
        sender: str | None = None,
    ) -> DryRun:
        """What the connection would do with a file, storing nothing but one history line
        (`pipeline.dryrun`): the app's dry-run screen, the hosted servers' `dry-run/`
        folders and the `+dryrun` address all come here."""
        connection = self._inbound(name_or_id)
        p = Path(path)
        dry = dryrun.run(self.settings, self.db, connection, p, file_name or p.name, self.clock())
        dry.event = dryrun.record(self.db, dry, source, self.clock(), sender=sender)
        return dry

    @requires(Role.ANALYST, Role.REVIEWER)
    def dry_run_return_address(self, connection: Connection) -> str | None:
        """Where a dry run's report is mailed when the file did not come by mail: the
        partner's return address, as a run's results (`_return_address`)."""
        return self._return_address(connection)

    @requires(Role.ANALYST, Role.REVIEWER)
    def dry_run_mail_answer_to(self, connection: Connection, sender: str | None) -> str | None:
        """Where the report of a dry run that came by mail goes: its sender when the
        connection names it (an allowed sender, or a return address of the connection, its
        logins or its partner), else the connection's return address. A report says which
        records are loaded already (WOULD_BE_DUPLICATE): sent to whoever wrote to the
        address, which is made from the connection's name, it told anyone which of a
        partner's calls exist (security audit)."""
        if sender:
            allowed = getattr(connection.transfer, "allowed_senders", ())
            with self.db.connect() as con:
                creds = credential_store.of_connection(con, connection.id)
                partner = partner_store.get(con, connection.partner_id) if connection.partner_id else None
            known = {c.return_email for c in creds} | {connection.return_email}
            known |= {partner.return_email} if partner else set()
            named = {a.strip().lower() for a in known if a} | set(allowed)
            if sender.lower() in named or "@" + sender.lower().rpartition("@")[2] in allowed:
                return sender
        return self._return_address(connection)
