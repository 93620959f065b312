"""One run of one file: ledger -> parse -> validate -> load -> results.

Exactly-once rules, in the order they apply:
1. The bytes are staged under `<home>/staging/<sha256>` and the file is recorded in the
   ledger (name, size, sha256, source) before anything parses it.
2. Bytes already loaded (or awaiting review) for the connection are a duplicate: recorded,
   nothing else happens.
3. Parsing and validation hold no database lock; loading is one transaction that inserts
   rows, rejects, the validation result and the actions, and marks the file loaded. It
   commits whole or not at all, so a crash leaves no partial rows.
4. A run left In Progress by a dead process is marked Failed by `recover_interrupted()` at
   the next start and can be retried from the staged bytes.
A batch failing a critical expectation is quarantined: its accepted rows wait as Parquet
under `<home>/runs/<run id>/` until a reviewer releases or discards them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectbatch import schemas
from connectbatch.errors import ConnectBatchError, RunInProgressError
from connectbatch.models import Connection, ConnectionStatus, FileRecord, Run, RunStatus
from connectbatch.parser import api as csvparse
from connectbatch.pipeline import lifecycle, progress, results, validation
from connectbatch.settings import Settings
from connectbatch.store import Database
from connectbatch.store import actions as action_store
from connectbatch.store import connections as connection_store
from connectbatch.store import data as data_store
from connectbatch.store import runs as run_store

log = logging.getLogger("connectbatch.pipeline.ingest")

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Received:
    """A file as it reached us: its bytes on local disk and where it came from."""

    name: str
    path: Path
    source: str
    remote_path: str | None = None
    mtime: dt.datetime | None = None


@dataclass
class Staged:
    sha256: str
    size: int
    path: Path


class Ingestor:
    """Runs files through the pipeline for the connections of one data directory."""

    def __init__(self, settings: Settings, db: Database, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        # Called with each finished run (e-mailing results); failures are logged, not raised.
        self.on_finished: list[Callable[[Run], None]] = []

    # ------------------------------------------------------------------ public

    def start_run(self, connection: Connection, trigger: str, retry_of: int | None = None) -> Run:
        """Open a run; refused while another live process has one open for the connection
        (push uploads are exempt: each upload is its own run and they may overlap)."""
        with self.db.transaction() as con:
            if trigger != "push":
                for other in run_store.in_progress(con):
                    if other.connection_id == connection.id and other.pid and _alive(other.pid):
                        raise RunInProgressError(
                            f"run {other.id} of {connection.name!r} is still in progress"
                        )
            run = run_store.create(con, connection.id, trigger, os.getpid(), retry_of)
            connection_store.set_status(con, connection.id, ConnectionStatus.IN_PROGRESS, self.clock())
        return run

    def finish_run(self, run: Run, failed_reason: str | None = None) -> Run:
        """Close a run after all its files: Completed unless a file failed or the run
        itself failed (`failed_reason`, e.g. the partner's server was unreachable)."""
        with self.db.transaction() as con:
            files = run_store.files_of_run(con, run.id)
            failed = [f for f in files if f.state in ("rejected", "failed", "quarantined")]
            current = run_store.get(con, run.id)
            status = RunStatus.FAILED if failed or failed_reason else RunStatus.COMPLETED
            reasons = [failed_reason] if failed_reason else []
            reasons += [f"{f.name}: {f.message}" for f in failed if f.message]
            reason = "; ".join(reasons) or current.reason
            run_store.finish(
                con, run.id, status, self.clock(), reason,
                files_seen=len(files),
                files_loaded=sum(f.state == "loaded" for f in files),
                files_skipped=sum(f.state in ("duplicate", "skipped") for f in files),
            )  # fmt: skip
            connection_store.set_status(
                con, run.connection_id,
                ConnectionStatus.FAILED if status is RunStatus.FAILED else ConnectionStatus.COMPLETED,
                self.clock(),
            )  # fmt: skip
            finished = run_store.get(con, run.id)
        for hook in self.on_finished:
            try:
                hook(finished)
            except Exception:
                log.exception("run hook failed", extra={"run_id": run.id})
        return finished

    def ingest(self, connection: Connection, received: Received, trigger: str = "cli") -> Run:
        """A whole run for a single file (CLI, upload, push)."""
        run = self.start_run(connection, trigger)
        try:
            self.ingest_file(run, connection, received)
        except BaseException as exc:  # never leave a run In Progress behind a live process
            self.finish_run(run, failed_reason=f"stopped: {type(exc).__name__}: {exc}")
            raise
        return self.finish_run(run)

    def ingest_file(self, run: Run, connection: Connection, received: Received) -> FileRecord:
        """Take one file through the pipeline inside an open run. Never raises for a bad
        file: the outcome is in the returned ledger record (and the run's counters)."""
        staged = self._stage(received.path)
        with self.db.transaction() as con:
            record = run_store.record_file(
                con, connection_id=connection.id, run_id=run.id, name=received.name,
                source=received.source, size=staged.size, sha256=staged.sha256,
                remote_path=received.remote_path, mtime=received.mtime,
            )  # fmt: skip
            earlier = run_store.loaded_file_with_hash(con, connection.id, staged.sha256)
            if earlier is not None:
                message = (
                    f"same content as {earlier.name!r} (file {earlier.id}, run {earlier.run_id}); "
                    "not loaded again"
                )
                run_store.set_file_state(con, record.id, "duplicate", message)
                self._add_counters(con, run.id, rows_duplicate=earlier.rows_accepted)
        if earlier is not None:
            log.info("duplicate file", extra=_ctx(run, connection, received.name))
            self._write_results(connection, run.id, record, "duplicate", message=message)
            return self._file(record.id)
        try:
            return self._process(run, connection, record, staged)
        except Exception as exc:  # the run must end Failed, whatever broke
            log.exception("ingest failed", extra=_ctx(run, connection, received.name))
            message = f"internal error while processing the file: {type(exc).__name__}: {exc}"
            with self.db.transaction() as con:
                run_store.set_file_state(con, record.id, "failed", message)
            self._write_results(connection, run.id, record, "failed", message=message)
            return self._file(record.id)
        finally:
            progress.forget(run.id)

    def retry(self, run_id: int) -> Run:
        """Run the files of a Failed run again, from their staged bytes, as a new run."""
        with self.db.connect() as con:
            old = run_store.get(con, run_id)
            if old.status is not RunStatus.FAILED or old.review in ("quarantined", "released"):
                raise ConnectBatchError(
                    f"run {run_id} is {old.status.value.lower()}"
                    + (f" ({old.review})" if old.review else "")
                    + "; only failed runs can be retried (quarantined ones are released or discarded)"
                )
            connection = connection_store.get(con, old.connection_id)
            files = run_store.files_of_run(con, run_id)
        if not files:  # stopped before its file was recorded: nothing staged to run again
            raise ConnectBatchError(
                f"run {run_id} has no file to retry (it stopped before its file was recorded); "
                "send the file again"
            )
        run = self.start_run(connection, "retry", retry_of=run_id)
        for f in files:
            path = self.settings.staging / f.sha256
            if not path.exists():
                with self.db.transaction() as con:
                    run_store.finish(
                        con,
                        run.id,
                        RunStatus.FAILED,
                        self.clock(),
                        f"the staged copy of {f.name} is gone; send the file again",
                    )
                return self.finish_run(run)
            self.ingest_file(run, connection, Received(f.name, path, f.source, f.remote_path, f.mtime))
        return self.finish_run(run)

    def release(self, run_id: int, note: str | None, actor: str) -> Run:
        """Load a quarantined batch as it is (a reviewer accepted it)."""
        with self.db.connect() as con:
            run = run_store.get(con, run_id)
            if run.review != "quarantined":
                raise ConnectBatchError(f"run {run_id} is not quarantined")
            connection = connection_store.get(con, run.connection_id)
            files = [f for f in run_store.files_of_run(con, run_id) if f.state == "quarantined"]
        dtype = schemas.get(connection.data_type)
        created_per_file: dict[int, int] = {}
        loaded: dict[int, tuple[pa.Table, pa.Array]] = {}
        accepted = rejected = duplicates = 0  # added to the run's counters
        with self.db.transaction() as con:
            for f in files:
                table, lines = self._load_quarantined(run_id, f.id)
                # A reviewer accepts the batch, not re-sent records: rows whose key is already
                # loaded for the connection stay out (nothing doubled), counted as duplicates.
                table, lines, repeated = _without_loaded_keys(con, dtype, connection.id, table, lines)
                duplicates += repeated
                loaded[f.id] = (table, lines)
                load_rejects: list[tuple[int, str | None, str | None, str]] = []
                created_per_file[f.id] = self._load_rows(
                    con, connection, run_id, f, table, lines, load_rejects
                )
                # rows an action-modifications file could not apply count as rejected
                refused = len({r[0] for r in load_rejects})
                if load_rejects:
                    run_store.insert_rejects(con, run_id, f.id, _rejects_table(load_rejects))
                run_store.set_file_state(
                    con, f.id, "loaded", f"released by {actor}",
                    table.num_rows - refused, f.rows_rejected + refused,
                )  # fmt: skip
                accepted += table.num_rows - refused
                rejected += refused
            run_store.set_review(con, run_id, "released", _note(actor, note))
            run_store.finish(
                con,
                run_id,
                RunStatus.COMPLETED,
                self.clock(),
                f"released by {actor}" + (f": {note}" if note else ""),
                actions_created=run.actions_created + sum(created_per_file.values()),
                files_loaded=run.files_loaded + len(files),
                rows_accepted=run.rows_accepted + accepted,
                rows_rejected=run.rows_rejected + rejected,
                rows_duplicate=run.rows_duplicate + duplicates,
            )
            connection_store.set_status(con, connection.id, ConnectionStatus.COMPLETED, self.clock())
            stored_rejects = run_store.rejects_of_run(con, run_id)
        for f in files:
            table, lines = loaded[f.id]
            kept = [(r.line, r.column, r.value, r.reason) for r in stored_rejects if r.file_id == f.id]
            self._write_results(
                connection, run_id, f, "loaded", table=table, lines=lines, rejects=kept,
                key_columns=list(dtype.key_columns), message=f"released by {actor}",
                actions_created=created_per_file[f.id],
            )  # fmt: skip
        shutil.rmtree(self.settings.runs_dir / str(run_id), ignore_errors=True)
        return self._run(run_id)

    def discard(self, run_id: int, note: str | None, actor: str) -> Run:
        with self.db.transaction() as con:
            run = run_store.get(con, run_id)
            if run.review != "quarantined":
                raise ConnectBatchError(f"run {run_id} is not quarantined")
            for f in run_store.files_of_run(con, run_id):
                if f.state == "quarantined":
                    run_store.set_file_state(con, f.id, "discarded", f"discarded by {actor}")
            run_store.set_review(con, run_id, "discarded", _note(actor, note))
        shutil.rmtree(self.settings.runs_dir / str(run_id), ignore_errors=True)
        return self._run(run_id)

    def recover_interrupted(self) -> list[int]:
        """Mark runs whose process died mid-run as Failed (they can then be retried)."""
        recovered = []
        with self.db.transaction() as con:
            for run in run_store.in_progress(con):
                if run.pid and run.pid != os.getpid() and _alive(run.pid):
                    continue
                for f in run_store.files_of_run(con, run.id):
                    if f.state in ("fetched", "parsed", "validated"):
                        run_store.set_file_state(con, f.id, "failed", "interrupted")
                run_store.finish(
                    con, run.id, RunStatus.FAILED, self.clock(),
                    "interrupted: the process stopped during the run; nothing was loaded; retry it",
                )  # fmt: skip
                connection_store.set_status(con, run.connection_id, ConnectionStatus.FAILED, self.clock())
                recovered.append(run.id)
        return recovered

    # ------------------------------------------------------------------ pipeline

    def _process(self, run: Run, connection: Connection, record: FileRecord, staged: Staged) -> FileRecord:
        dtype = schemas.get(connection.data_type)
        progress.start(run.id, staged.size)
        clock = _Stopwatch()
        try:
            parsed = csvparse.parse_file(
                staged.path, dtype.key, encoding=connection.encoding,
                column_map=connection.column_map or None, delimiter=connection.delimiter,
                timezone=connection.timezone, max_bytes=self.settings.max_file_bytes,
                progress=lambda done, rows: progress.update(run.id, done, rows),
            )  # fmt: skip
        except ConnectBatchError as exc:
            with self.db.transaction() as con:
                run_store.set_file_state(con, record.id, "rejected", str(exc))
            self._write_results(connection, run.id, record, "rejected", message=str(exc))
            return self._file(record.id)
        clock.lap("parse")
        rejects = [(r.line, r.column, r.value, r.reason) for r in parsed.rejects]
        report = self._validate(connection, parsed)
        clock.lap("validate")
        if not report.success:
            return self._quarantine(run, connection, record, parsed, rejects, report)
        with self.db.transaction() as con:
            created = self._load_rows(con, connection, run.id, record, parsed.table, parsed.lines, rejects)
            self._store_checks(con, run.id, record.id, rejects, report)
            # Rows that parsed but could not be applied (action modifications) count as rejected.
            rejected = len({r[0] for r in rejects})
            accepted = parsed.rows_accepted - (rejected - parsed.rows_rejected)
            run_store.set_file_state(con, record.id, "loaded", None, accepted, rejected)
            self._add_counters(
                con, run.id, rows_accepted=accepted, rows_rejected=rejected, actions_created=created,
            )  # fmt: skip
        clock.lap("load")
        self._write_results(
            connection, run.id, record, "loaded", table=parsed.table, lines=parsed.lines,
            rejects=rejects, key_columns=list(dtype.key_columns), report=report, seconds=clock.laps,
            actions_created=created, reject_keys=parsed.reject_keys,
        )  # fmt: skip
        log.info("file loaded in %s", clock.laps, extra=_ctx(run, connection, record.name))
        return self._file(record.id)

    def _validate(self, connection: Connection, parsed: csvparse.ParseResult) -> validation.ValidationReport:
        dtype = schemas.get(connection.data_type)
        already: list[str] = []
        if dtype.key_columns and parsed.table.num_rows:
            with self.db.connect() as con:
                already = data_store.existing_keys(
                    con, dtype.key, connection.id, parsed.table.column(dtype.key_columns[0]).combine_chunks()
                )
        return validation.validate(
            parsed.table, dtype.key, rows_rejected=parsed.rows_rejected, already_loaded=already,
            now=self.clock(), max_age_days=self.settings.validation_max_age_days,
            max_reject_rate=self.settings.max_reject_rate,
        )  # fmt: skip

    def _load_rows(
        self,
        con: duckdb.DuckDBPyConnection,
        connection: Connection,
        run_id: int,
        record: FileRecord,
        table: pa.Table,
        lines: pa.Array,
        rejects: list[tuple[int, str | None, str | None, str]],
    ) -> int:
        """Insert rows and create (or apply) actions inside the caller's transaction.
        Returns the number of actions created or changed."""
        dtype = schemas.get(connection.data_type)
        data_store.insert_rows(
            con, dtype.key, run_id=run_id, file_id=record.id, connection_id=connection.id,
            table=table, lines=lines,
        )  # fmt: skip
        if dtype.key == "action_modifications":
            applied, mod_rejects = lifecycle.apply_modifications(
                con, table, lines, actor=f"file:{record.id}", now=self.clock()
            )
            rejects.extend(mod_rejects)
            return applied
        return action_store.create_for_file(
            con, dtype.key, connection_id=connection.id, run_id=run_id,
            file_id=record.id, lock_days=connection.lock_days,
        )  # fmt: skip

    def _store_checks(
        self,
        con: duckdb.DuckDBPyConnection,
        run_id: int,
        file_id: int,
        rejects: list[tuple[int, str | None, str | None, str]],
        report: validation.ValidationReport,
    ) -> None:
        run_store.insert_rejects(con, run_id, file_id, _rejects_table(rejects))
        run_store.insert_validation(
            con, run_id, file_id, report.success, len(report.critical_failures),
            len(report.warnings), report.to_json(),
        )  # fmt: skip

    def _quarantine(
        self,
        run: Run,
        connection: Connection,
        record: FileRecord,
        parsed: csvparse.ParseResult,
        rejects: list[tuple[int, str | None, str | None, str]],
        report: validation.ValidationReport,
    ) -> FileRecord:
        folder = self.settings.runs_dir / str(run.id)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            parsed.table.append_column("__line", parsed.lines), folder / f"file-{record.id}.parquet"
        )
        message = "quarantined: " + "; ".join(report.critical_failures)
        with self.db.transaction() as con:
            self._store_checks(con, run.id, record.id, rejects, report)
            run_store.set_file_state(
                con, record.id, "quarantined", message, parsed.rows_accepted, parsed.rows_rejected
            )
            run_store.set_review(con, run.id, "quarantined", None)
            self._add_counters(con, run.id, rows_accepted=0, rows_rejected=parsed.rows_rejected)
        dtype = schemas.get(connection.data_type)
        self._write_results(
            connection, run.id, record, "quarantined", table=parsed.table, lines=parsed.lines,
            rejects=rejects, key_columns=list(dtype.key_columns), report=report, message=message,
            reject_keys=parsed.reject_keys,
        )  # fmt: skip
        return self._file(record.id)

    def _load_quarantined(self, run_id: int, file_id: int) -> tuple[pa.Table, pa.Array]:
        path = self.settings.runs_dir / str(run_id) / f"file-{file_id}.parquet"
        if not path.exists():
            raise ConnectBatchError(f"the quarantined rows of run {run_id} are gone ({path})")
        table = pq.read_table(path)
        lines = table.column("__line").combine_chunks()
        return table.drop_columns(["__line"]), lines

    # ------------------------------------------------------------------ helpers

    def _stage(self, path: Path) -> Staged:
        """Copy the bytes into staging under their sha256 (once), hashing as we go."""
        staging = self.settings.staging
        staging.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=staging, prefix=".incoming-")
        try:
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(8 * 1024 * 1024):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
            target = staging / digest.hexdigest()
            if target.exists():
                os.unlink(tmp)
            else:
                os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Staged(digest.hexdigest(), size, target)

    def _add_counters(self, con: duckdb.DuckDBPyConnection, run_id: int, **add: int) -> None:
        run_store.add_counters(con, run_id, **add)

    def _file(self, file_id: int) -> FileRecord:
        with self.db.connect() as con:
            return run_store.get_file(con, file_id)

    def _run(self, run_id: int) -> Run:
        with self.db.connect() as con:
            return run_store.get(con, run_id)

    def _write_results(
        self,
        connection: Connection,
        run_id: int,
        record: FileRecord,
        outcome: str,
        *,
        table: pa.Table | None = None,
        lines: pa.Array | None = None,
        rejects: list[tuple[int, str | None, str | None, str]] | None = None,
        key_columns: list[str] | None = None,
        report: validation.ValidationReport | None = None,
        message: str | None = None,
        seconds: dict[str, float] | None = None,
        actions_created: int = 0,
        reject_keys: dict[int, str] | None = None,
    ) -> None:
        rejected_lines = {r[0] for r in rejects or []}
        accepted = 0
        if table is not None and outcome == "loaded":
            accepted = table.num_rows
            if rejected_lines and lines is not None:  # parsed, not applied (action modifications)
                refused = pa.array(sorted(rejected_lines), lines.type)
                accepted -= pc.sum(pc.is_in(lines, value_set=refused)).as_py() or 0
        summary = results.Summary(
            run_id=run_id, file_id=record.id, file=record.name, connection=connection.name,
            data_type=connection.data_type, status=outcome,
            rows_accepted=accepted,
            rows_rejected=len(rejected_lines), actions_created=actions_created,
            message=message,
            validation=(
                {"success": report.success, "critical_failures": report.critical_failures,
                 "warnings": report.warnings} if report is not None else {}
            ),
            seconds=seconds or {},
        )  # fmt: skip
        status = {"quarantined": results.QUARANTINED, "duplicate": results.DUPLICATE}.get(
            outcome, results.ACCEPTED
        )
        try:
            results.write(
                self.settings.outbound, connection.id, summary, key_columns=key_columns or [],
                accepted_keys=table, accepted_lines=lines, rejects=rejects or [],
                accepted_status=status, reject_keys=reject_keys,
            )  # fmt: skip
        except OSError:
            log.exception("could not write results", extra={"run_id": run_id})


def _without_loaded_keys(
    con: duckdb.DuckDBPyConnection,
    dtype: schemas.DataType,
    connection_id: int,
    table: pa.Table,
    lines: pa.Array,
) -> tuple[pa.Table, pa.Array, int]:
    """Drop the rows whose key the connection has already loaded; return how many went."""
    if not dtype.key_columns or table.num_rows == 0:
        return table, lines, 0
    keys = table.column(dtype.key_columns[0]).combine_chunks()
    existing = data_store.existing_keys(con, dtype.key, connection_id, keys)
    if not existing:
        return table, lines, 0
    keep = pc.invert(pc.is_in(keys, value_set=pa.array(existing, keys.type)))
    kept = table.filter(keep)
    return kept, lines.filter(keep), table.num_rows - kept.num_rows


class _Stopwatch:
    """Seconds per pipeline stage, kept in the summary for benchmarks and slow-run triage."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _rejects_table(rejects: list[tuple[int, str | None, str | None, str]]) -> pa.Table:
    return pa.table(
        {
            "line": pa.array([r[0] for r in rejects], pa.int64()),
            "column_name": pa.array([r[1] for r in rejects], pa.string()),
            "value": pa.array([r[2] for r in rejects], pa.string()),
            "reason": pa.array([r[3] for r in rejects], pa.string()),
        }
    )


def _note(actor: str, note: str | None) -> str:
    return f"{actor}: {note}" if note else actor


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ctx(run: Run, connection: Connection, file: str) -> dict[str, object]:
    return {"run_id": run.id, "connection_id": connection.id, "file": file}
