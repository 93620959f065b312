"""The ingestor: one run of one file, in order, across the pipeline's modules.

Exactly-once rules, in the order they apply:
1. `staging`: the bytes are staged under `<home>/staging/<sha256>` and the file is recorded
   in the ledger (name, size, sha256, source) before anything parses it. Bytes already
   loaded (or awaiting review) for the connection are a duplicate: recorded, nothing else.
2. Parsing and `validation` hold no database lock; the load's transaction asks again whether
   the batch's records were loaded meanwhile (`commit.still_new`: two deliveries at once).
3. `load`: one transaction inserts rows, rejects, validation result and actions and marks the
   file loaded, whole or not at all: a crash leaves no partial rows.
   Re-sent records (same key, new bytes) follow the data type and the connection: held for
   review by default (`new_keys_only`); a new version of the stored record for catalogs and in
   `supersede` mode (identical ones change nothing); modification rows are events, applied in
   order, where re-applying an event already in effect changes nothing (`load`, `lifecycle`).
4. `quarantine`: a batch failing a critical expectation waits as Parquet under
   `<home>/runs/<run id>/` until a reviewer releases or discards it.
5. `recovery`: a run left In Progress by a dead process is marked Failed at the next start
   and can be retried from the staged bytes.
`results` answers the sender for every file, whatever its outcome; mail goes out through `outbox`.

Whatever breaks (a full disk, a damaged staged copy, a bug), the file and its run end Failed
with the step and the cause, written in one small transaction after the failed one rolled back
(`Database.record_failure`, which can use the reserve a full disk leaves no room for). A run
never reads as Completed unless its file loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.errors import ConnectBatchError
from connectbatch.models import Connection, ConnectionStatus, FileRecord, FileState, Run, RunStatus
from connectbatch.pipeline import closing, failures, progress, quarantine, recovery, results, staging, stream
from connectbatch.pipeline.ahead import Ahead
from connectbatch.pipeline.clock import Clock, utcnow
from connectbatch.pipeline.commit import LoadedMeanwhile, RunEnd, Stopwatch, answer_loaded, load_alone
from connectbatch.pipeline.compute import Computed, compute, recheck_loaded
from connectbatch.pipeline.outbox import Outbox
from connectbatch.pipeline.staging import Received, Staged
from connectbatch.settings import Settings
from connectbatch.store import Database, liveness
from connectbatch.store import connections as connection_store
from connectbatch.store import data as data_store
from connectbatch.store import mappings as mapping_store
from connectbatch.store import runs as run_store

__all__ = ["Clock", "Computed", "Ingestor", "Received", "Staged", "compute", "recheck_loaded", "utcnow"]

log = logging.getLogger("connectbatch.pipeline.ingest")


class Ingestor:
    """Runs files through the pipeline for the connections of one data directory."""

    def __init__(self, settings: Settings, db: Database, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        # Called with each finished run (e-mailing results); failures are logged, not raised.
        self.on_finished: list[Callable[[Run], None]] = []
        self.outbox = Outbox(settings, db, clock)  # results, alerts and automatic answers
        self.ahead = Ahead(self)  # a small file's compute, started while its ledger commits

    # ------------------------------------------------------------------ runs

    def start_run(self, connection: Connection, trigger: str, retry_of: int | None = None) -> Run:
        """Open a run; refused while another live process has one for the connection (push: may overlap)."""
        with self.db.transaction() as con:
            return self.open_run(con, connection, trigger, retry_of)

    def open_run(
        self, con: duckdb.DuckDBPyConnection, connection: Connection, trigger: str,
        retry_of: int | None = None, *, first: bool = True,
    ) -> Run:  # fmt: skip
        """`start_run` inside the caller's transaction (which may record the run's file too).
        `first=False`: a later run of a group opened in the same transaction, for which the
        in-progress check and the connection's status were done by the first."""
        if first and trigger != "push":
            liveness.refuse_while_going(con, connection.id, connection.name)
        run = run_store.create(con, connection.id, trigger, retry_of, owner=liveness.me())
        liveness.running(self.db)  # its heartbeat (a flag; a thread when none goes)
        if first:
            connection_store.set_status(con, connection.id, ConnectionStatus.IN_PROGRESS, self.clock())
        return run

    def finish_run(self, run: Run, failed_reason: str | None = None) -> Run:
        """Close a run after all its files: Failed when a file failed or the run itself
        failed (`failed_reason`, e.g. the partner's server was unreachable), Needs review
        when a batch is held for a reviewer, else Completed."""
        with self.db.transaction() as con:
            finished = closing.close(con, run, self.clock(), failed_reason)
        self._announce(finished)
        return finished

    def _announce(self, finished: Run) -> Run:
        """Hand a finished run to the hooks (e-mailing results); failures are logged."""
        for hook in self.on_finished:
            try:
                hook(finished)
            except Exception:
                log.exception("run hook failed", extra={"run_id": finished.id})
        return finished

    def ingest(self, connection: Connection, received: Received, trigger: str = "cli") -> Run:
        """A whole run for a single file (CLI, upload, push). The bytes are staged first, so
        that the run is opened and its file recorded in one transaction (one commit fewer a
        file, issue 13), a small file computed meanwhile (`pipeline/ahead.py`); a file that
        cannot be staged still gets its run, Failed with why."""
        with self.db.held():
            try:
                staged = staging.stage(self.settings.staging, received.path, move=received.disposable)
            except OSError as exc:
                # Often a full disk: the run that says so is opened with the reserve's room.
                run = self.db.record_failure(lambda con: self.open_run(con, connection, trigger))
                failure = exc
                return self._run_alone(
                    run, lambda end: self._staging_failed(run, connection, received, failure)
                )

            def record() -> tuple[Run, staging.Entry]:
                with self.db.transaction() as con:  # nothing recorded unless both are
                    run = self.open_run(con, connection, trigger)
                    return run, staging.record_in(con, run, connection, received, staged, read_mapping=True)

            run, entry = self.ahead.record(connection, staged, record)
            return self._run_alone(
                run, lambda end: self._recorded(run, connection, received, staged, entry, end)
            )

    def ingest_many(self, connection: Connection, files: list[Received], trigger: str = "cli") -> list[Run]:
        """Files waiting together (a backlog), each its own run as `ingest` gives it, with
        their ledger entries in one commit and their loads in another (`pipeline.group`)."""
        from connectbatch.pipeline import group  # group builds on this module

        return group.ingest_group(self, connection, files, trigger)

    def _run_alone(self, run: Run, work: Callable[[RunEnd], FileRecord]) -> Run:
        """Take a single-file run's file through `work` and close the run: in the file's load
        transaction when it loaded (`end`), else after; never left In Progress."""
        end = RunEnd()
        try:
            work(end)
        except BaseException as exc:  # never leave a run In Progress behind a live process
            self.fail_run(run, f"stopped: {type(exc).__name__}: {exc}")
            raise
        if end.run is not None:  # closed in the file's load transaction
            self._announce(end.run)
            return end.run
        return self._finish_after_failure(run)

    def _finish_after_failure(self, run: Run) -> Run:
        """`finish_run`; a run whose failure is recorded (a full disk) as it stands if it can't."""
        try:
            return self.finish_run(run)
        except Exception:
            with self.db.connect() as con:
                recorded = run_store.get(con, run.id)
            if recorded.status is not RunStatus.FAILED:
                raise
            log.exception("could not write the run's final counts", extra={"run_id": run.id})
            return recorded

    def fail_run(self, run: Run, reason: str) -> None:
        """Best effort, for a run stopped by an exception that goes on up: closed with its
        counts when the disk allows, else just Failed with the reason (never raises)."""
        try:
            self.finish_run(run, failed_reason=reason)
            return
        except Exception:
            log.exception("could not close the failed run", extra={"run_id": run.id})
        try:
            self.db.record_failure(lambda con: self._close_failed(con, run, reason))
        except Exception:
            log.exception("could not record why the run failed", extra={"run_id": run.id})

    def _close_failed(self, con: duckdb.DuckDBPyConnection, run: Run, reason: str) -> None:
        current = run_store.get(con, run.id)
        if current.status is RunStatus.FAILED and current.reason:
            reason = f"{current.reason}; {reason}"
        run_store.finish(con, run.id, RunStatus.FAILED, self.clock(), reason)
        connection_store.set_status(con, run.connection_id, ConnectionStatus.FAILED, self.clock())

    def _file_failed(
        self, run: Run, connection: Connection, received: Received, record: FileRecord | None, message: str
    ) -> FileRecord:
        """Record a file that could not go on (and its run as Failed) in one small transaction
        that lands even on a full disk; then answer the sender if there is room for it."""

        def work(con: duckdb.DuckDBPyConnection) -> FileRecord:
            if record is None:
                size = received.path.stat().st_size if received.path.is_file() else 0
                entry = run_store.record_file(
                    con, connection_id=connection.id, run_id=run.id, name=received.name,
                    source=received.source, size=size, sha256="", remote_path=received.remote_path,
                    mtime=received.mtime, state=FileState.FAILED, message=message,
                )  # fmt: skip
            else:
                run_store.set_file_state(con, record.id, FileState.FAILED, message)
                entry = run_store.get_file(con, record.id)
            self._close_failed(con, run, f"{received.name}: {message}")
            return entry

        failed = self.db.record_failure(work)
        try:
            results.write_outcome(
                self.settings.outbound, connection, run.id, failed, FileState.FAILED, message=message
            )
        except OSError:
            log.exception("could not write the failure outcome", extra=_ctx(run, connection, received.name))
        return failed

    def ingest_file(self, run: Run, connection: Connection, received: Received) -> FileRecord:
        """One file through the pipeline in an open run; never raises for a bad file (see the record)."""
        with self.db.held():  # one open of the database for the file, unless another process waits
            return self._ingest_file(run, connection, received)

    def _ingest_file(
        self, run: Run, connection: Connection, received: Received, end: RunEnd | None = None
    ) -> FileRecord:
        try:
            staged = staging.stage(self.settings.staging, received.path, move=received.disposable)
        except OSError as exc:  # a full disk, an unreadable source: the attempt is recorded
            return self._staging_failed(run, connection, received, exc)
        entry = staging.record(self.db, run, connection, received, staged, read_mapping=True)
        return self._recorded(run, connection, received, staged, entry, end)

    def _staging_failed(
        self, run: Run, connection: Connection, received: Received, exc: OSError
    ) -> FileRecord:
        log.exception("staging failed", extra=_ctx(run, connection, received.name))
        message = staging.failure_message(exc, self.settings.staging)
        return self._file_failed(run, connection, received, None, message)

    def _recorded(
        self, run: Run, connection: Connection, received: Received, staged: Staged, entry: staging.Entry,
        end: RunEnd | None = None, computed: Computed | None = None,
    ) -> FileRecord:  # fmt: skip
        """The rest of a recorded file's way: a duplicate answered, else computed (unless given)
        and committed; whatever breaks fails the file (and its run) saying at which step."""
        record = entry.record
        if entry.duplicate_message is not None:
            log.info("duplicate file", extra=_ctx(run, connection, received.name))
            message = entry.duplicate_message
            results.write_outcome(
                self.settings.outbound, connection, run.id, record, FileState.DUPLICATE, message=message
            )
            return self._file(record.id)
        clock = Stopwatch()
        try:
            if computed is None:
                return self._process(run, connection, record, staged, clock, end, entry)
            return self.commit(run, connection, record, computed, clock, end)
        except Exception as exc:  # the run must end Failed, whatever broke, saying where
            if end is not None:
                end.run = None  # closed with the load, maybe, but failed after it: closed again
            log.exception("ingest failed", extra=_ctx(run, connection, received.name))
            message = failures.step_failed(clock.step, exc)
            return self._file_failed(run, connection, received, record, message)
        finally:
            progress.forget(run.id)

    # ------------------------------------------------------------------ review and recovery

    def retry(self, run_id: int) -> Run:
        """Run the files of a Failed run again, from their staged bytes, as a new run."""
        return recovery.retry(self, run_id)

    def release(self, run_id: int, note: str | None, actor: str) -> Run:
        """Load a quarantined batch (a reviewer accepted it); the hooks send its final results."""
        return self._announce(quarantine.release(self.settings, self.db, self.clock, run_id, note, actor))

    def discard(self, run_id: int, note: str | None, actor: str) -> Run:
        """Drop a quarantined batch (a reviewer refused it); the hooks send the answer."""
        return self._announce(quarantine.discard(self.settings, self.db, self.clock, run_id, note, actor))

    def cleanup_staging(self) -> list[staging.Removal]:
        """Remove staged raw files past their retention (never those still needed)."""
        removed = staging.cleanup(
            self.settings.staging, self.db, self.settings.staging_retention_days, self.clock()
        )
        for r in removed:
            log.info("removed staged copy %s (%d bytes, last used %s)", r.sha256, r.size, r.last_used_at)
        return removed

    def recover_interrupted(self) -> list[int]:
        """Mark runs whose process died mid-run as Failed (they can then be retried), give the
        answers it owed (`recovery.answer_owed`), remove its temporary copies in staging."""
        for path in recovery.remove_stale_incoming(self.settings.staging):
            log.warning("removed a killed copy's temporary file %s", path)
        self.db.keep_reserve()  # given back on a full disk: again once there is room
        recovered = recovery.recover_interrupted(self.db, self.clock)
        recovery.answer_owed(self)
        return recovered

    # ------------------------------------------------------------------ one file

    def _process(
        self, run: Run, connection: Connection, record: FileRecord, staged: Staged, clock: Stopwatch,
        end: RunEnd | None = None, entry: staging.Entry | None = None,
    ) -> FileRecord:  # fmt: skip
        """A recorded file's compute half, then its commit half; a big file streams in
        bounded memory instead (issue 13: pipeline/stream.py)."""
        big = stream.plan(self.db, connection, record.id, staged.size)
        if big is None:
            computed = self.compute_file(run, connection, staged, clock, entry)
            return self.commit(run, connection, record, computed, clock, end)
        try:
            saved = self._prepare(run, connection, staged, clock, entry)
        except ConnectBatchError as exc:
            return self.commit(run, connection, record, Computed(refusal=str(exc)), clock)
        return stream.ingest(self, run, connection, record, staged.path, saved, clock, big, end)

    def _prepare(
        self, run: Run, connection: Connection, staged: Staged, clock: Stopwatch, entry: staging.Entry | None
    ) -> mapping_store.SavedMapping | None:
        """What comes before any parse: progress shown, the mapping checked (ConnectBatchError)."""
        progress.start(run.id, staged.size)
        # `stage` has just checked staging/<sha256> against its name (or replaced it).
        clock.step = "parse"
        return staging.mapping_for(self.db, run, connection, staged, entry)

    def compute_file(
        self,
        run: Run,
        connection: Connection,
        staged: Staged,
        clock: Stopwatch,
        entry: staging.Entry | None = None,
        already_loaded: Callable[[schemas.DataType, pa.Table], list[str]] | None = None,
    ) -> Computed:
        """The compute half of a staged file (mapping check, parse, validate): no write.
        `already_loaded` replaces the database's answer of which keys are loaded (a group
        also counts its own files' keys). A file computed while its ledger entry committed
        (`entry.early`, pipeline/ahead.py) is not computed again."""
        if entry is not None and entry.early is not None:
            clock.laps.update(entry.early.laps)
            return entry.early.computed
        try:
            saved = self._prepare(run, connection, staged, clock, entry)
        except ConnectBatchError as exc:
            return Computed(refusal=str(exc))
        if already_loaded is None:
            already_loaded = lambda dtype, table: self._existing_keys(connection, dtype, table)  # noqa: E731
        return compute(
            self.settings, connection, staged.path, saved, self.clock(), clock, already_loaded=already_loaded,
            # called through the module: the crash-recovery test hooks progress.update
            on_progress=lambda done, rows: progress.update(run.id, done, rows), mark=self.db.write_mark(),
        )  # fmt: skip

    def commit(
        self, run: Run, connection: Connection, record: FileRecord, computed: Computed, clock: Stopwatch,
        end: RunEnd | None = None,
    ) -> FileRecord:  # fmt: skip
        """The database half of a file: its refusal, its quarantine or its load transaction,
        then the results file; after `compute`, or (distributed) what a worker computed. With
        `end` (the run's only file) a loaded file's transaction also closes the run (`end.run`)."""
        clock.step = "stage (write to disk)"  # the outcome commits once the staged copy is on disk
        staging.settle(record.sha256)
        clock.step = "load (commit)"
        if computed.refusal is not None or computed.parsed is None or computed.report is None:
            message = computed.refusal or "nothing was parsed"
            with self.db.transaction() as con:
                refused = run_store.set_file_state(con, record.id, FileState.REJECTED, message)
            results.write_outcome(
                self.settings.outbound, connection, run.id, record, FileState.REJECTED, message=message
            )
            return refused or self._file(record.id)
        parsed, rejects, report = computed.parsed, computed.rejects, computed.report
        if not report.success:
            clock.step = "quarantine"
            if computed.part is not None:  # a streamed big file: held whole, as any batch
                parsed = stream.whole(parsed, computed.part)
            quarantine.settle(self.settings, self.db, run, connection, record, parsed, rejects, report)
            return self._file(record.id)
        done = load_alone(self.db, self.settings.outbound, connection, run, record, computed, self.clock(),
                          clock, close=end is not None)  # fmt: skip
        if isinstance(done, LoadedMeanwhile):  # judged again (held for review): nothing was written
            computed = stream.recheck(self.settings, connection, computed, done.keys, self.clock())
            return self.commit(run, connection, record, computed, clock, end)
        if end is not None:
            end.run = done.closed
        answer_loaded(connection, run, record, done, clock, self.db)
        return done.loaded.record or self._file(record.id)

    def _existing_keys(self, connection: Connection, dtype: schemas.DataType, table: pa.Table) -> list[str]:
        with self.db.connect() as con:  # the identities loaded before ("already loaded")
            return data_store.existing_keys(con, dtype.key, connection.id, table)

    def _file(self, file_id: int) -> FileRecord:
        with self.db.connect() as con:
            return run_store.get_file(con, file_id)


def _ctx(run: Run, connection: Connection, file: str) -> dict[str, object]:
    return {"run_id": run.id, "connection_id": connection.id, "file": file}
