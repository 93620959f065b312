"""Runs: ingest a file, pull now, retry, the history of runs with their files and rejects,
results files, and exports for outbound connections."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
from pathlib import Path

import duckdb

from connectbatch.escaping import visible
from connectbatch.models import (
    Connection,
    ConnectionStatus,
    Direction,
    Export,
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
from connectbatch.store import connections as connection_store
from connectbatch.store import events as event_store
from connectbatch.store import exports
from connectbatch.store import outbox as outbox_store
from connectbatch.store import runs as run_store
from connectbatch.store.events import EXPORT_FAILED, ConnectionEvent
from connectbatch.transfer.pull import collect


def _regular_file(path: str | Path) -> Path:
    """`path` if it is a file to ingest; else what it is instead, in words ("there is no
    file" for a folder sent a person looking for a typo)."""
    p = Path(path)
    if p.is_file():
        return p
    shown = visible(str(path))
    if not p.exists():
        raise NotFoundError(f"there is no file {shown!r}")
    what = "a folder" if p.is_dir() else "not a regular file (a pipe, a device or a socket)"
    raise InvalidInputError("path", f"{shown!r} is {what}: give the path of a CSV file")


log = logging.getLogger("connectbatch.services.runs")


_export_locks: dict[int, threading.Lock] = {}
_export_locks_guard = threading.Lock()


def _exporting(connection_id: int) -> threading.Lock:
    """The lock one connection's exports take in this process. Two at once (its schedule and
    an analyst's Export now) read the same watermark, and the second's ledger row conflicted:
    the connection read Failed although its export went out. Another process cannot overlap:
    it opens the database only once this one let it go."""
    with _export_locks_guard:
        return _export_locks.setdefault(connection_id, threading.Lock())


class RunServices(ServiceBase):
    @requires(Role.ANALYST)
    def ingest_file(self, name_or_id: str | int, path: str | Path, trigger: str = "cli") -> Run:
        connection = self._inbound(name_or_id)
        p = _regular_file(path)
        return self.ingestor.ingest(
            connection, ingest.Received(p.name, p, "cli" if trigger == "cli" else trigger), trigger
        )

    @requires(Role.ANALYST)
    def ingest_files(self, name_or_id: str | int, paths: list[str | Path], trigger: str = "cli") -> list[Run]:
        """Several waiting files, each its own run (as `ingest_file` one after another gives
        them), committed as a group: one commit for their ledger entries, one for their loads
        (`pipeline.group`, issue 13)."""
        connection = self._inbound(name_or_id)
        received = []
        for path in paths:
            p = _regular_file(path)
            received.append(ingest.Received(p.name, p, "cli" if trigger == "cli" else trigger))
        return self.ingestor.ingest_many(connection, received, trigger)

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

    def retried_as(self, run_id: int) -> Run | None:
        """The run that retried `run_id` (by hand, or an upload taken in again at a start)."""
        self.run(run_id)
        with self.db.connect() as con:
            return run_store.retried_as(con, run_id)

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

    def results_mail(self, run_id: int) -> list[outbox_store.Queued]:
        """The run's results e-mails, oldest first: sent, waiting for another try, or given up
        (pipeline/outbox.py), so the History can say whether the partner got them."""
        self.run(run_id)
        with self.db.connect() as con:
            return outbox_store.of_run(con, run_id)

    def results_files(self, name_or_id: str | int) -> list[Path]:
        return results.list_files(self.settings.outbound, self.connection(name_or_id).id)

    @requires(Role.ANALYST)
    def pull(self, name_or_id: str | int, trigger: str = "manual", *, retry_of: int | None = None) -> Run:
        """Run now: one pull from the partner's server or mailbox (`retry_of`: the failed run
        this pull retries)."""
        connection = self._inbound(name_or_id)
        if connection.methodology is not Methodology.PULL:
            raise InvalidInputError(
                "connection",
                f"{connection.name!r} is push: files arrive on their own, there is nothing to pull",
            )
        run = collect.pull(self.ingestor, self.box, connection, trigger, retry_of=retry_of)
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
        """Write the connection's data type for [start, end) of event time as CSV into its
        outbound folder, where its "Pull from us" login collects it: a re-export of a date
        range (only its partner's rows; the watermark of `export_now` does not move)."""
        connection = self._outbound(name_or_id)
        if end <= start:
            raise InvalidInputError("end", "must be after the start")
        folder = self.settings.outbound / str(connection.id)
        folder.mkdir(parents=True, exist_ok=True)
        with self.db.transaction() as con:
            sources = self._export_sources(con, connection)
            stamp = self.clock()
            name = (
                f"export-{connection.data_type}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"
                f"-{stamp:%Y%m%dT%H%M%S%f}.csv"
            )
            rows = exports.export_csv(con, connection.data_type, start, end, folder / name, sources)
            exports.record(con, connection.id, "window", name, rows, stamp)
            connection_store.set_status(con, connection.id, ConnectionStatus.COMPLETED, stamp)
        return folder / name

    @requires(Role.ANALYST)
    def export_now(self, name_or_id: str | int, trigger: str = "manual") -> Export | None:
        """Export what the outbound connection has not exported yet: rows loaded since the
        last export (late rows too: load time counts, not EventDate) and rows whose action
        changed status since, each exactly once (the watermark is stored with the export).
        Only rows of its partner's inbound connections (or the ones it names). None when there
        is nothing new (no empty file, no ledger row)."""
        connection = self._outbound(name_or_id)
        with _exporting(connection.id):  # its schedule and an Export now: one after the other
            return self._export_now(connection, trigger)

    def _settle_exports(self) -> list[Path]:
        """Publish the exports a stopped process recorded but had not renamed yet
        (`exports.settle`), for every outbound connection: at start, not at that connection's
        next export, which may never come (exports on demand only; outbound audit)."""
        published: list[Path] = []
        with self.db.transaction() as con:
            for c in connection_store.list_all(con):
                folder = self.settings.outbound / str(c.id)
                if c.direction is Direction.OUTBOUND and folder.is_dir():
                    published += exports.settle(con, c.id, folder)
        return published

    def _export_now(self, connection: Connection, trigger: str) -> Export | None:
        folder = self.settings.outbound / str(connection.id)
        folder.mkdir(parents=True, exist_ok=True)
        written: Path | None = None  # in flight until its ledger row commits
        try:
            with self.db.transaction() as con:
                exports.settle(con, connection.id, folder)  # what a stopped export left recorded
                sources = self._export_sources(con, connection)
                done = exports.export_new(
                    con, connection.id, connection.data_type, sources, folder, trigger, self.clock()
                )
                written = folder / done.file_name if done is not None and done.file_name else None
                if done is not None:  # the connection's transfer: its Status and Last Active
                    connection_store.set_status(con, connection.id, ConnectionStatus.COMPLETED, self.clock())
        except BaseException as exc:
            if written is not None:  # written, but not recorded: it must not be collected
                exports.unpublished(written).unlink(missing_ok=True)
            if isinstance(exc, Exception):  # Failed, and why, where the analyst looks
                self._export_failed(connection, exc)
            raise
        if written is not None:  # recorded: now the partner may collect it (a failure here
            exports.publish(written)  # is published by the next export's settle)
        return done

    def _export_failed(self, connection: Connection, exc: Exception) -> None:
        """A failed export marks its connection Failed with a line in its history (a
        scheduled one is otherwise only logged); a failure to record that is logged too."""
        try:
            with self.db.transaction() as con:
                now = self.clock()
                connection_store.set_status(con, connection.id, ConnectionStatus.FAILED, now)
                message = f"export failed: {type(exc).__name__}: {exc}"
                event_store.record(con, connection.id, EXPORT_FAILED, message, now)
        except Exception:
            log.exception("could not record a failed export", extra={"connection_id": connection.id})

    def exports(self, name_or_id: str | int, limit: int = 100) -> list[Export]:
        """The export ledger of an outbound connection, newest first."""
        connection = self.connection(name_or_id)
        with self.db.connect() as con:
            return exports.of_connection(con, connection.id, limit)

    def _outbound(self, name_or_id: str | int) -> Connection:
        connection = self.connection(name_or_id)
        if connection.direction is not Direction.OUTBOUND:
            raise InvalidInputError(
                "connection", f"{connection.name!r} is inbound; exports go to outbound connections"
            )
        return connection

    def _export_sources(self, con: duckdb.DuckDBPyConnection, outbound: Connection) -> list[int]:
        """The inbound connections whose rows an outbound connection exports: the ones it
        names, else every one of its partner with its data type; never another partner's
        (a named source moved to another partner since is left out)."""
        if outbound.partner_id is None:
            return []
        own = [
            c for c in connection_store.of_partner(con, outbound.partner_id)
            if c.direction is Direction.INBOUND and c.data_type == outbound.data_type
        ]  # fmt: skip
        if outbound.export_sources:
            return [c.id for c in own if c.id in outbound.export_sources]
        return [c.id for c in own]

    @requires(Role.ANALYST)
    def retry(self, run_id: int) -> Run:
        """Run a failed run's unfinished files again from their staged bytes. A pull run that
        left none (it failed before fetching, or was killed mid-transfer) is retried by
        pulling again: the ledger makes that fetch exactly what the run did not finish. Either
        way the new run is recorded as the failed one's retry (a second retry of it is refused,
        and its history says "Retried as run N")."""
        connection = self._connection_of_run(run_id)
        try:
            return self.ingestor.retry(run_id)
        except recovery.NothingToRetryError:
            if connection.methodology is not Methodology.PULL:
                raise
        return self.pull(connection.id, trigger="retry", retry_of=run_id)


def _safe_name(name: str) -> str:
    """A file name as shown and stored: last path part, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip() or "upload.csv"
    return cleaned[:200]
