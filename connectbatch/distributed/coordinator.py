"""The coordinator: one per installation, owner of the DuckDB file and the single loader.

`CoordinatorLock` keeps a second `serve --coordinator` from scheduling: a Redis key taken with
SET NX PX and renewed by a thread; whoever holds it schedules, another refuses to start (naming
the holder) or, with `--standby`, waits and takes over when the key expires.

`Coordinator` sends the tasks (`tasks`) and, in one loader thread, turns their results into
ledger entries and load transactions: a pull's files are recorded in the ledger (duplicates
and waiting files included) before any parse task is sent; each parse output is committed in
one transaction by `Ingestor.commit`, after the "already loaded keys" check that needs the
database; the outputs of one run that are ready together are committed together (group
commit, `group.commit_in_run`: one transaction, one "already loaded" query), so the single
loader keeps up with more workers. A file whose ledger state is no longer `fetched` is
never loaded again. A task that
failed after its last retry is the dead letter: its run (or file) is recorded Failed with the
reason.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectbatch.distributed.app import PARSE_TASK, PULL_TASK
from connectbatch.distributed.listing import Decisions, _remote
from connectbatch.distributed.loading import OutputLoader, _Job, _reason, _RunState
from connectbatch.distributed.sealed import seal
from connectbatch.distributed.tasks import remote_key, verdict_settings
from connectbatch.errors import ConfigurationError, ConnectBatchError, RunInProgressError
from connectbatch.models import Connection, FileRecord, FileState, Run
from connectbatch.pipeline import history, ingest, results, staging
from connectbatch.pipeline.commit import Stopwatch
from connectbatch.services import Services
from connectbatch.store import host_keys as host_key_store
from connectbatch.store import runs as run_store
from connectbatch.store.anchor import alive
from connectbatch.transfer import base
from connectbatch.transfer.pull import login
from connectbatch.transfer.pull.notes import RunNotes

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult
    from redis import Redis

log = logging.getLogger("connectbatch.distributed.coordinator")

LOCK_KEY = "connectbatch:coordinator"
LOCK_TTL_MS = 15_000
# 1: renewed; 2: the key was gone (Redis restarted without persistence, or flushed) and is
# ours again, as nobody else took it; 0: another coordinator holds it.
_RENEW = (
    "local v = redis.call('get', KEYS[1]) "
    "if v == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end "
    "if not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end "
    "return 0"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def holder_name() -> str:
    """Who holds the lock, as a person reads it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class CoordinatorLock:
    """The one-coordinator lock in Redis (SET NX PX, renewed at a third of its life)."""

    def __init__(self, client: Redis, holder: str | None = None, ttl_ms: int = LOCK_TTL_MS) -> None:
        self.client = client
        self.holder = holder or holder_name()
        self.ttl_ms = ttl_ms
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; start renewing it."""
        if not self.client.set(LOCK_KEY, self.holder, nx=True, px=self.ttl_ms):
            return False
        self._thread = threading.Thread(target=self._renew, name="coordinator-lock", daemon=True)
        self._thread.start()
        return True

    def wait(self, stop: threading.Event, poll: float = 1.0, timeout: float | None = None) -> bool:
        """Standby: try until the lock is ours (True), or `stop` is set or `timeout` seconds
        passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if self.acquire():
                return True
            stop.wait(poll)
        return False

    def left_by_the_dead(self) -> bool:
        """Whether the holder is a process of this host that is gone (a coordinator killed and
        started again; in a container started again, with our own pid): its lock expires
        within `ttl_ms`, as it is no longer renewed."""
        host, _, pid = (self.current_holder() or "").rpartition(":")
        here = host == socket.gethostname() and pid.isdigit()
        return here and (int(pid) == os.getpid() or not alive(int(pid)))

    def current_holder(self) -> str | None:
        value = self.client.get(LOCK_KEY)
        return value.decode() if isinstance(value, bytes) else (str(value) if value else None)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.client.eval(_RELEASE, 1, LOCK_KEY, self.holder)
        except Exception:  # the key expires anyway
            log.exception("could not release the coordinator lock")

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                ok = self.client.eval(_RENEW, 1, LOCK_KEY, self.holder, self.ttl_ms)
            except Exception:
                log.exception("could not renew the coordinator lock")
                continue
            if ok == 2:  # was "lost the coordinator lock" and an exit, with no other holder
                log.warning("the coordinator lock was gone from Redis (restarted?); held again")
            elif not ok:
                log.error(
                    "lost the coordinator lock to %s: another coordinator schedules now",
                    self.current_holder() or "another process",
                )
                self.lost.set()
                return


class Coordinator(OutputLoader, Decisions):
    """Sends tasks and loads their results, one thread writing to the database."""

    def __init__(self, services: Services, app: Celery, poll_seconds: float = 0.1) -> None:
        self.services = services
        self.app = app
        self.poll_seconds = poll_seconds
        self._jobs: list[_Job] = []
        self._runs: dict[int, _RunState] = {}
        self._busy: set[int] = set()
        # E-mail pulls: per connection, the mails whose refusal (or absence of a file) the
        # last pull's result let us record; the next pull marks them processed (`tasks.pull`).
        self._marks: dict[int, frozenset[str]] = {}
        self._alive = f"connectbatch:coordinator-tasks:{uuid.uuid4().hex}"  # see `_send`
        self._unreachable = False  # the last read of the tasks' states failed (`step`)
        self._guard = threading.Lock()
        # Database writes of the coordinator, one at a time: the loader's and those of push
        # uploads (gateway threads) touch the same connection rows, and DuckDB refuses two
        # transactions updating one row ("Conflict on update") instead of waiting.
        self._writing = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded = 0  # files the loader committed (for the benchmark's commit rate)
        self.together = 0  # of them, loaded by group commit
        self.commit_seconds = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def idle(self) -> bool:
        """Nothing sent is still waiting to be loaded."""
        with self._guard:
            return not self._jobs and not self._busy

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.1)
        return self.idle()

    def wait_finished(self, kind: str, timeout: float) -> bool:
        """Whether every sent task of `kind` ("pull" or "parse") finished within `timeout`
        seconds, for a loader that is not running (tests and benchmarks load with `step`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._guard:
                jobs = [j for j in self._jobs if j.kind == kind]
            if jobs and len(self._ready(jobs)) == len(jobs):
                return True
            time.sleep(0.1)
        return False

    # ------------------------------------------------------------------ sending

    def dispatch_pull(self, connection: Connection, trigger: str = "schedule") -> bool:
        """Send one pull of the connection; False when one of its runs is still going (at
        most one run per connection, as in embedded mode)."""
        with self._guard:
            if connection.id in self._busy:
                return False
            self._busy.add(connection.id)
        try:
            db = self.services.db
            try:
                endpoint, credential_id = login.endpoint_for(db, self.services.box, connection)
            except ConfigurationError as exc:
                # The key cannot open the login: a Failed run says so (raised, it was a
                # traceback in the log only and the connection's pulls stopped without a word).
                ingestor = self.services.ingestor
                ingestor.finish_run(ingestor.start_run(connection, trigger), failed_reason=str(exc))
                with self._guard:
                    self._busy.discard(connection.id)
                return True
            with db.connect() as con:
                settled = {
                    remote_key(path, size, mtime): state
                    for path, size, mtime, state in run_store.settled_remote(con, connection.id)
                }
            marks = sorted(self._marks.get(connection.id, ()))
            payload = {"connection": connection, "endpoint": endpoint, "settled": settled, "mark": marks}
            token = seal(self.services.box, payload)
            result = self._send(PULL_TASK, token)
        except BaseException:
            with self._guard:
                self._busy.discard(connection.id)
            raise
        job = _Job("pull", result, connection, trigger, credential_id, endpoint.host_key is not None)
        job.token = token
        with self._guard:
            self._jobs.append(job)
        return True

    def submit_file(self, connection: Connection, path: Path, trigger: str = "push") -> Run:
        """A file that reached the coordinator itself (a hosted push upload): staged and
        recorded in the ledger here, parsed and validated by a worker, committed by the
        loader like a pulled one. Returns the run, still In Progress; the upload may go, as
        its bytes are staged. Pushes of one connection may overlap, as in embedded mode."""
        ingestor = self.services.ingestor
        try:  # the copy and hash of a big upload must not hold up the loader
            staged = staging.stage(self.services.settings.staging, path)
        except OSError as exc:  # a full disk: the attempt is recorded, as embedded does
            with self._writing:
                run = ingestor.start_run(connection, trigger)
                message = staging.failure_message(exc, self.services.settings.staging)
                received = staging.Received(path.name, path, trigger)
                ingestor._file_failed(run, connection, received, None, message)
            return run
        with self._writing:
            return self._submit(connection, path, staged, trigger)

    def _submit(self, connection: Connection, path: Path, staged: staging.Staged, trigger: str) -> Run:
        ingestor = self.services.ingestor
        run = ingestor.start_run(connection, trigger)
        state = _RunState(run, connection)
        with self._guard:
            self._runs[run.id] = state
        try:
            self._take_staged(state, staging.Received(path.name, staged.path, trigger), staged)
        except BaseException as exc:
            ingestor.fail_run(run, f"internal error: {type(exc).__name__}: {exc}")
            with self._guard:
                self._runs.pop(run.id, None)
            raise
        self._maybe_finish(state)
        return run

    def _dispatch_parse(
        self, state: _RunState, record: FileRecord, received: staging.Received, staged: staging.Staged
    ) -> None:
        try:
            saved = staging.mapping_for(self.services.ingestor.db, state.run, state.connection, staged)
        except ConnectBatchError as exc:  # the header lost a mapped column: refused as embedded
            self.services.ingestor.commit(
                state.run, state.connection, record, ingest.Computed(refusal=str(exc)), Stopwatch()
            )
            return
        payload = {
            "connection": state.connection,
            "sha256": staged.sha256,
            "run_id": state.run.id,
            "mapping": saved,
            "now": self.services.clock(),
            "verdict": verdict_settings(self.services.settings),  # the coordinator's rules, not the worker's
        }
        token = seal(self.services.box, payload)
        result = self._send(PARSE_TASK, token)
        state.remaining.add(record.id)
        job = _Job("parse", result, state.connection, run_id=state.run.id, record=record, received=received)
        job.token = token
        with self._guard:
            self._jobs.append(job)

    # ------------------------------------------------------------------ the loader

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.step():
                self._stop.wait(self.poll_seconds)

    def step(self) -> bool:
        """Load what the finished tasks brought, once; whether any had finished."""
        self._sweep()
        with self._guard:
            jobs = list(self._jobs)
        try:
            finished = self._ready(jobs)
        except Exception as exc:  # Redis unreachable: said once (not 10 tracebacks a second
            # for as long as it is down), tried again every second
            if not self._unreachable:
                log.warning(
                    "could not read the tasks' states (%s: %s); trying again", type(exc).__name__, exc
                )
            self._unreachable = True
            self._stop.wait(1.0)
            return False
        if self._unreachable and jobs:
            self._unreachable = False
            log.warning("the tasks' states can be read again")
        batches: dict[tuple[str, int], list[_Job]] = {}  # a pull alone; a connection's parses together
        for k, job in enumerate(finished):
            key = ("pull", k) if job.kind == "pull" else ("parse", job.connection.id)
            batches.setdefault(key, []).append(job)
        for (kind, _), batch in batches.items():
            try:
                with self._writing:
                    if kind == "pull":
                        self._pulled(batch[0])
                    else:
                        self._parsed_of_connection(batch)
            except Exception:
                log.exception(
                    "loading a task's result failed", extra={"connection_id": batch[0].connection.id}
                )
                if kind == "pull":  # no run of it goes on: the connection's next pull may go
                    self._done(batch[0].connection.id)
            finally:
                with self._guard:
                    for job in batch:
                        self._jobs.remove(job)
                for job in batch:
                    job.result.forget()
        return bool(finished)

    def _ready(self, jobs: list[_Job]) -> list[_Job]:
        """The jobs whose task finished, asked of the result backend in one round trip
        (MGET) rather than one per task: thousands may be pending."""
        if not jobs:
            return []
        from celery import states

        backend = self.app.backend
        keys = [backend.get_key_for_task(job.result.id) for job in jobs]
        alive, *values = backend.mget([self._alive, *keys])
        if alive is None:  # Redis lost its data (restarted without it, flushed) and with it every task
            with self._guard:  # not loaded yet: sent again (one that runs twice changes nothing)
                lost = list(self._jobs)
            log.warning("Redis lost the tasks in flight (restarted or flushed); sending %d again", len(lost))
            for job in lost:
                job.result = self._send(PULL_TASK if job.kind == "pull" else PARSE_TASK, job.token)
            return []
        ready = []
        for job, value in zip(jobs, values, strict=True):
            if value is not None and backend.decode_result(value)["status"] in states.READY_STATES:
                ready.append(job)
        return ready

    def _send(self, task: str, token: str) -> AsyncResult:
        """Send a task, noting in Redis that we have tasks there: a Redis that lost its data
        lost the note too, and `_ready` sends them again."""
        self.app.backend.set(self._alive, b"1")  # expires with the results (result_expires)
        return self.app.send_task(task, args=[token])

    def _pulled(self, job: _Job) -> None:
        connection, ingestor, db = job.connection, self.services.ingestor, self.services.db
        if job.result.failed():  # the dead letter: after the last retry
            reason = f"pull failed: {_reason(job.result)}"
            login.credential_error(db, job.credential_id, reason)
            run = ingestor.start_run(connection, job.trigger)
            ingestor.finish_run(run, failed_reason=reason)
            self._done(connection.id)
            return
        value: dict[str, Any] = job.result.get(disable_sync_subtasks=False)
        if "cut" in value:  # past its deadline (`tasks.pull_deadline`): the server was slow,
            # the login is not in question (as embedded mode's `collect`); the next run retries
            run = ingestor.start_run(connection, job.trigger)
            ingestor.finish_run(run, failed_reason=str(value["cut"]))
            self._done(connection.id)
            return
        if not job.pinned and value.get("host_key") and value.get("fingerprint") and connection.host:
            with db.transaction() as con:
                host_key_store.pin_first(
                    con, connection.host, connection.port, value["host_key"], value["fingerprint"]
                )
        files = [_remote(entry) for entry in value["files"]]
        try:
            marks = set()
            for entry in value.get("unmatched", ()):  # mails that brought no file: history, once
                history.unmatched_mail(db, ingestor.outbox, connection, entry["extra"], self.services.clock())
                marks.add(entry["remote_path"])
            new = [(e, r) for e, r in files if e["sha256"] or self._new_decision(connection, r, e)]
        except BaseException:
            self._done(connection.id)
            raise
        if not new and job.trigger == "schedule":  # nothing new to take or say: a quiet poll
            self._marks[connection.id] = frozenset(marks | self._to_mark(connection, files))
            login.credential_ok(db, job.credential_id)
            self._done(connection.id)
            return
        try:
            run = ingestor.start_run(connection, job.trigger)
        except RunInProgressError:  # another process's run (Run now, `pull N`): as embedded
            # mode's scheduler, this trigger is skipped, said in the history; the next one takes
            # the files (nothing here was recorded)
            log.info("skipped: a run is in progress", extra={"connection_id": connection.id})
            history.skipped_trigger(db, connection.id, self.services.clock())
            self._done(connection.id)
            return
        state = _RunState(run, connection)
        with self._guard:
            self._runs[run.id] = state
        try:
            for entry, remote in new:
                self._record(state, entry, remote)
            self._marks[connection.id] = frozenset(marks | self._to_mark(connection, files))
            # files the server would not send, or not let us tidy up: said, not failing it
            notes = RunNotes(str(connection.after_success or ""))
            notes.refused = [entry["note"] for entry, _ in new if entry.get("note")]
            for name, answer in value.get("untidy", ()):
                notes.not_tidied(name, answer)
            if notes.refused or notes.untidy:
                with db.transaction() as con:
                    run_store.note(con, run.id, notes.text())
            login.credential_ok(db, job.credential_id)
        except BaseException as exc:
            ingestor.fail_run(run, f"internal error: {type(exc).__name__}: {exc}")
            with self._guard:
                self._runs.pop(run.id, None)
            self._done(connection.id)
            raise
        self._maybe_finish(state)

    def _record(self, state: _RunState, entry: dict[str, Any], remote: base.RemoteFile) -> None:
        db, connection, run = self.services.db, state.connection, state.run
        source = connection.method.value
        if not entry["sha256"]:
            reason = self._wait_reason(connection, remote, entry)
            with db.transaction() as con:
                run_store.record_file(
                    con, connection_id=connection.id, run_id=run.id, name=remote.name, source=source,
                    size=remote.size or 0, sha256="", remote_path=remote.path, mtime=remote.mtime,
                    state="skipped", message=reason,
                )  # fmt: skip
            return
        path = self.services.settings.staging / entry["sha256"]
        received = staging.Received(remote.name, path, source, remote.path, remote.mtime)
        self._take_staged(state, received, staging.Staged(entry["sha256"], int(entry["size_staged"]), path))

    def _take_staged(self, state: _RunState, received: staging.Received, staged: staging.Staged) -> None:
        """Record a staged file in the ledger; answer it as a duplicate, or send its parse."""
        found = staging.record(self.services.db, state.run, state.connection, received, staged)
        if found.duplicate_message is not None:
            results.write_outcome(
                self.services.settings.outbound, state.connection, state.run.id, found.record,
                FileState.DUPLICATE, message=found.duplicate_message,
            )  # fmt: skip
            return
        self._dispatch_parse(state, found.record, received, staged)


def engine_for(services: Services, app: Celery) -> tuple[Any, Coordinator]:
    """An Engine whose scheduled pulls go to the workers (the loader starts with it)."""
    from connectbatch.engine import Engine

    coordinator = Coordinator(services, app)

    class DistributedEngine(Engine):
        """The embedded engine, except that a pull is a task and a push upload is parsed by
        a worker (its bytes staged and recorded here first)."""

        def _pull(self, connection: Connection, trigger: str) -> Run | None:
            if not coordinator.dispatch_pull(connection, trigger):  # the scheduler records it
                raise RunInProgressError(f"a run of {connection.name!r} is already in progress")
            return None

        def _push_ingest(self, connection_id: int, paths: list[Path]) -> list[Run]:
            connection = self.services.connection(connection_id)
            return [coordinator.submit_file(connection, path) for path in paths]

    engine = DistributedEngine(services, services.settings.mailbox)
    coordinator.start()
    return engine, coordinator
