"""Runs: ingest a file, pull now, retry, the history of runs with their files and rejects,
results files, and exports for outbound connections."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from connectbatch.models import (
    Connection,
    Direction,
    FileRecord,
    Methodology,
    RejectRow,
    Role,
    Run,
)
from connectbatch.pipeline import history, ingest, recovery, results
from connectbatch.services.base import (
    InvalidInputError,
    NotFoundError,
    ServiceBase,
    requires,
)
from connectbatch.store import events as event_store
from connectbatch.store import exports
from connectbatch.store import runs as run_store
from connectbatch.store.events import ConnectionEvent
from connectbatch.transfer.pull import collect


class RunServices(ServiceBase):
    @requires(Role.ANALYST)
    def ingest_file(self, name_or_id: str | int, path: str | Path, trigger: str = "cli") -> Run:
        connection = self._inbound(name_or_id)
        p = Path(path)
        if not p.is_file():
            raise NotFoundError(f"there is no file {str(path)!r}")
        return self.ingestor.ingest(
            connection, ingest.Received(p.name, p, "cli" if trigger == "cli" else trigger), trigger
        )

    @requires(Role.ANALYST)
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

    @requires(Role.ANALYST)
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

    @requires(Role.ANALYST)
    def scheduled_pull(self, name_or_id: str | int) -> Run | None:
        """A scheduled pull (the engine, as the operator): None when it found nothing new,
        so a per-minute schedule adds a line only when something happened."""
        connection = self._inbound(name_or_id)
        return collect.pull(self.ingestor, self.box, connection, "schedule", quiet_when_settled=True)

    @requires(Role.ANALYST)
    def record_skipped_trigger(self, connection_id: int) -> ConnectionEvent:
        """A scheduled trigger found a run still going: coalesced into one history line."""
        return history.skipped_trigger(self.db, connection_id, self.clock())

    def connection_events(
        self, name_or_id: str | int | None = None, limit: int = 200
    ) -> list[ConnectionEvent]:
        """The connection's history beyond its runs, newest first (partner text inside:
        escape it when shown)."""
        connection_id = self.connection(name_or_id).id if name_or_id is not None else None
        with self.db.connect() as con:
            return event_store.of_connection(con, connection_id, limit)

    @requires(Role.ANALYST)
    def connection_to_pull(self, name_or_id: str | int) -> Connection:
        """The connection a person may pull now: the app's Run now goes through the engine
        (which holds the per-connection lock, as the operator), so the role is checked here."""
        return self._inbound(name_or_id)

    @requires(Role.ANALYST)
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

    @requires(Role.ANALYST)
    def retry(self, run_id: int) -> Run:
        """Run a failed run's unfinished files again from their staged bytes. A pull run that
        left none (it failed before fetching, or was killed mid-transfer) is retried by
        pulling again: the ledger makes that fetch exactly what the run did not finish."""
        connection = self._connection_of_run(run_id)
        try:
            return self.ingestor.retry(run_id)
        except recovery.NothingToRetryError:
            if connection.methodology is not Methodology.PULL:
                raise
        return self.pull(connection.id, trigger="retry")


def _safe_name(name: str) -> str:
    """A file name as shown and stored: last path part, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip() or "upload.csv"
    return cleaned[:200]
