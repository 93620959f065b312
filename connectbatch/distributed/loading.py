"""The loader's half that commits the workers' parse outputs (a mixin of `Coordinator`).

The finished parses of one connection are taken together: push uploads (each the one file of
its run) are committed as a group, each closing its run (`group.commit_runs`); the parses of
one pull run as a group in that run (`group.commit_in_run`). One "already loaded" query for
all of them; a file whose bytes another loaded (or brings first in the batch) goes after, one
at a time, as a duplicate. Each file is first checked: never loaded again once its ledger
state left `fetched`, and a task that failed after its last retry (the dead letter) is
recorded Failed. When a group commit fails, what did not load goes one file at a time.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connectbatch.distributed import output
from connectbatch.models import Connection, FileRecord, FileState, Run
from connectbatch.pipeline import failures, group, results, staging
from connectbatch.pipeline.commit import Stopwatch
from connectbatch.services import Services
from connectbatch.store import run_groups
from connectbatch.store import runs as run_store

if TYPE_CHECKING:
    from celery.result import AsyncResult

log = logging.getLogger("connectbatch.distributed.coordinator")
SWEEP_SECONDS = 3600.0  # how often the loader removes the outputs of runs that are over


@dataclass
class _RunState:
    run: Run
    connection: Connection
    remaining: set[int] = field(default_factory=set)


@dataclass
class _Job:
    kind: str  # "pull" | "parse"
    result: AsyncResult
    connection: Connection
    trigger: str = ""
    credential_id: int | None = None
    pinned: bool = True
    run_id: int = 0
    record: FileRecord | None = None
    received: staging.Received | None = None
    token: str = ""  # the sealed payload, to send the task again when Redis lost it


class OutputLoader:
    """The loader's commits of parse outputs and its closing of runs; `Coordinator` holds
    the state named here and sends the tasks."""

    services: Services
    _guard: threading.Lock
    _runs: dict[int, _RunState]
    _busy: set[int]
    loaded: int  # files the loader committed (for the benchmark's commit rate)
    together: int  # of them, loaded by group commit
    commit_seconds: float

    _swept_at = -SWEEP_SECONDS  # monotonic time of the last `_sweep`: the first step sweeps

    def _sweep(self) -> None:
        """Now and then (and on the loader's first step, after a restart) remove the parse
        outputs of runs no longer In Progress (`output.sweep`)."""
        if time.monotonic() - self._swept_at < SWEEP_SECONDS:
            return
        self._swept_at = time.monotonic()
        try:
            with self.services.db.connect() as con:
                live = {run.id for run in run_store.in_progress(con)}
            for where in output.sweep(self.services.settings.staging, live):
                log.info("removed the parse output %s of a run that is over", where.name)
        except Exception:  # disk space only: tried again at the next sweep
            log.exception("could not sweep the parse outputs")

    def _parsed_of_connection(self, jobs: list[_Job]) -> None:
        """The finished parses of one connection: push uploads (each its run's one file)
        committed together, each closing its run; the parses of a pull run together."""
        with self._guard:
            states = {job.run_id: self._runs.get(job.run_id) for job in jobs}
        uploads: list[tuple[_RunState, _Job]] = []
        runs: dict[int, list[_Job]] = {}
        for job in jobs:
            state = states[job.run_id]
            assert job.record is not None
            if state is not None and state.run.trigger == "push" and state.remaining == {job.record.id}:
                uploads.append((state, job))
            else:
                runs.setdefault(job.run_id, []).append(job)
        if len(uploads) > 1 and group.groupable(uploads[0][0].connection):
            self._uploads(uploads)
        else:
            for _, job in uploads:
                runs.setdefault(job.run_id, []).append(job)
        for run_jobs in runs.values():
            self._parsed(run_jobs)

    def _uploads(self, uploads: list[tuple[_RunState, _Job]]) -> None:
        """Push uploads' parses, each the one file of its run: loaded by `_load`; the runs
        the group commit took are closed by it, the others here."""
        together = self._load(uploads, each_its_run=True)
        closed = {state.run.id for state, _ in together}
        for state, job in uploads:
            assert job.record is not None
            state.remaining.discard(job.record.id)
            if state.run.id not in closed:
                self._maybe_finish(state)
                continue
            with self._guard:
                self._runs.pop(state.run.id, None)
            self._done(state.connection.id)

    def _parsed(self, jobs: list[_Job]) -> None:
        """The finished parses of one run, loaded by `_load` (together when the connection's
        loads only insert); the run is finished once its last file is in."""
        with self._guard:
            state = self._runs.get(jobs[0].run_id)
        if state is None:
            return
        try:
            self._load([(state, job) for job in jobs], each_its_run=False,
                       together_ok=group.groupable(state.connection))  # fmt: skip
        finally:
            for job in jobs:
                assert job.record is not None
                state.remaining.discard(job.record.id)
            self._maybe_finish(state)

    def _load(
        self, pairs: list[tuple[_RunState, _Job]], each_its_run: bool, together_ok: bool = True
    ) -> list[tuple[_RunState, _Job]]:
        """Each finished parse checked (`_checked`); of those ready, the ones whose bytes are
        new committed together (`_commit_together`) when there are two or more, the rest (a
        repeat is a duplicate) one at a time after them. When the group commit fails, what
        did not load goes one at a time. Returns the pairs the group commit took."""
        ready = [(state, job) for state, job in pairs if self._checked(state, job)]
        together: list[tuple[_RunState, _Job]] = []
        if len(ready) > 1 and together_ok:
            try:
                fresh = {id(job) for job in self._repeats_apart(ready[0][0].connection, ready)}
                together = [(state, job) for state, job in ready if id(job) in fresh]
                if len(together) > 1:
                    self._commit_together(together, each_its_run)
                    ready = [(state, job) for state, job in ready if id(job) not in fresh]
                else:
                    together = []
            except Exception:  # what did not load goes one at a time
                log.exception("a group commit failed", extra={"connection_id": ready[0][0].connection.id})
                ready = [(state, job) for state, job in ready if self._checked(state, job)]
                left = {id(job) for _, job in ready}
                together = [(state, job) for state, job in together if id(job) not in left]
        for state, job in ready:
            self._guarded(state, job, functools.partial(self._commit, state, job.record))
        return together

    def _repeats_apart(self, connection: Connection, pairs: list[tuple[_RunState, _Job]]) -> list[_Job]:
        """The jobs whose bytes no other file has loaded and no earlier job of the batch
        holds; the others are repeats, answered as duplicates by `_commit`, one at a time."""
        hashes = [job.record.sha256 for _, job in pairs if job.record is not None]
        with self.services.db.connect() as con:
            loaded = run_groups.loaded_files_with_hashes(con, connection.id, hashes)
        fresh: list[_Job] = []
        seen: set[str] = set()
        for _, job in pairs:
            assert job.record is not None
            earlier = loaded.get(job.record.sha256)
            repeated = job.record.sha256 in seen or (earlier is not None and earlier.id != job.record.id)
            if not repeated:
                fresh.append(job)
            seen.add(job.record.sha256)
        return fresh

    def _checked(self, state: _RunState, job: _Job) -> bool:
        """Whether a finished parse goes on to its load: not when its file was loaded or
        settled already (loading again changes nothing), nor when its task failed (the dead
        letter: recorded Failed here)."""
        assert job.record is not None and job.received is not None
        ingestor, record, received = self.services.ingestor, job.record, job.received

        def check() -> bool:
            with self.services.db.connect() as con:
                current = run_store.get_file(con, record.id)
            if current.state is not FileState.FETCHED:
                return False
            if job.result.failed():  # after the last retry
                ingestor._file_failed(
                    state.run, state.connection, received, record,
                    f"parse failed on a worker: {_reason(job.result)}",
                )  # fmt: skip
                return False
            return True

        return self._guarded(state, job, check)

    def _guarded(self, state: _RunState, job: _Job, work: Callable[[], bool | None]) -> bool:
        """`work` for one file; whatever breaks fails the file (and its run), saying so."""
        assert job.record is not None and job.received is not None
        try:
            return bool(work())
        except Exception as exc:
            log.exception("load failed", extra={"run_id": job.run_id, "file": job.record.name})
            self.services.ingestor._file_failed(
                state.run, state.connection, job.received, job.record,
                failures.step_failed("load (commit)", exc),
            )  # fmt: skip
            return False

    def _commit_together(self, jobs: list[tuple[_RunState, _Job]], each_its_run: bool = False) -> None:
        """Group commit of one connection's outputs with distinct bytes: of one run
        (`group.commit_in_run`), or `each_its_run` (`group.commit_runs`, closing them)."""
        settings, ingestor = self.services.settings, self.services.ingestor
        started = time.perf_counter()
        files: list[group.Worked] = []
        for state, job in jobs:
            assert job.record is not None and job.received is not None
            record = job.record
            staged = staging.Staged(record.sha256, record.size, settings.staging / record.sha256)
            computed = output.read(settings.staging, record.sha256, state.run.id)
            files.append((state.run, job.received, staged, record, computed))
        state = jobs[0][0]
        if each_its_run:
            group.commit_runs(ingestor, state.connection, files)
        else:
            group.commit_in_run(ingestor, state.run, state.connection, files)
        self.loaded += len(jobs)
        self.together += len(jobs)
        self.commit_seconds += time.perf_counter() - started
        for run, _, _, record, _ in files:
            output.remove(settings.staging, record.sha256, run.id)

    def _commit(self, state: _RunState, record: FileRecord | None) -> None:
        assert record is not None
        settings, db, ingestor = self.services.settings, self.services.db, self.services.ingestor
        connection = state.connection
        started = time.perf_counter()
        with db.connect() as con:
            earlier = run_store.loaded_file_with_hash(con, connection.id, record.sha256)
            if earlier is not None and earlier.id != record.id:  # (a catalog's may be news again)
                earlier = staging.still_duplicate(con, connection, record.sha256, earlier)
        if earlier is not None and earlier.id != record.id:  # the same bytes twice in one pull
            with db.transaction() as con:
                message = staging.mark_duplicate(con, state.run.id, record.id, earlier)
            results.write_outcome(
                settings.outbound, connection, state.run.id, record, FileState.DUPLICATE, message=message
            )
            return
        computed = output.read(settings.staging, record.sha256, state.run.id)
        # the worker could not ask which records are loaded: the load's transaction asks
        # (`commit.still_new`) and judges the batch again with them
        ingestor.commit(state.run, connection, record, computed, Stopwatch())
        self.loaded += 1
        self.commit_seconds += time.perf_counter() - started
        output.remove(settings.staging, record.sha256, state.run.id)

    def _maybe_finish(self, state: _RunState) -> None:
        if state.remaining:
            return
        with self._guard:
            if self._runs.pop(state.run.id, None) is None:
                return
        try:
            self.services.ingestor.finish_run(state.run)
        finally:
            self._done(state.connection.id)

    def _done(self, connection_id: int) -> None:
        with self._guard:
            self._busy.discard(connection_id)


def _reason(result: AsyncResult) -> str:
    """A failed task's error as one readable line."""
    error = result.result
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error or result.state)
