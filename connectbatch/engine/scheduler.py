"""When runs happen: a cron schedule per pull connection, Run now, retries, the lock job.

APScheduler's BackgroundScheduler runs jobs in threads of the owning process (the app or
`connectbatch serve`). At most one run per connection at a time: a per-connection lock is
taken by scheduled runs and Run now alike, and a run that finds it taken is not started;
a scheduled trigger skipped that way is reported to `on_skipped` (the connection's history),
not only to the log. A scheduled pull that found nothing new returns no run (`pull` may
return None): it adds nothing to the history.
A pull that failed before seeing any file (server down, network) is retried with backoff;
one that failed on a file is not (the same bytes would fail the same way). Jobs live in
memory: at start, a pull or export whose scheduled time passed while nothing ran runs once
(`_missed`); schedules changed by another process are picked up every minute (`sync`).

Jobs run in three thread pools: pulls (and their retries) in `pull_workers` threads, exports
in their own, and the engine's housekeeping (action locking, retention, recovery, mailbox...)
in the default one. All shared one pool of 10: ten pulls held by servers that never answered
held back the lock job and every other connection's pull. The housekeeping pool has a thread
for each of its jobs (one instance of a job at a time), so none waits for another; a pull
waits for a thread only when `pull_workers` pulls are going, each ending by its deadline
(CONNECTBATCH_PULL_DEADLINE, `transfer.pull.stopping`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connectbatch.engine import cron
from connectbatch.errors import RunInProgressError
from connectbatch.models import Connection, Direction, Methodology, Run, RunStatus
from connectbatch.settings import PULL_WORKERS, debug_enabled

log = logging.getLogger("connectbatch.engine.scheduler")
# APScheduler logs at INFO every job it adds and two lines each time any job runs ("Running
# job", "executed successfully"): thousands of lines a day from the housekeeping jobs alone
# in `serve`'s log, burying the runs' own. Its warnings and errors (a missed run, a job that
# raised, a pull not started while one runs) still show, and all of it with CONNECTBATCH_DEBUG.
if not debug_enabled():
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

RETRY_DELAYS = (60, 300, 900)  # seconds after a pull that failed, not by a file (`_failed_itself`)
# A retry is left to the schedule when a scheduled run comes before it or this soon after.
RETRY_MARGIN = dt.timedelta(seconds=60)
LOCK_JOB_MINUTES = 15
SYNC_SECONDS = 60  # how often the jobs are matched to the schedules stored in the database
HOUSEKEEPING_THREADS = 12  # at least the engine's own jobs (engine/__init__.py, schedule-sync): 9 today
EXPORT_THREADS = 4
PULLS, EXPORTS = "pulls", "exports"  # the executors of those jobs; the rest run in "default"
# A cron trigger coming while its connection's pull still runs goes on to `_scheduled`, which
# finds the run lock taken and records the skip (`on_skipped`); APScheduler's own limit of one
# running instance per job dropped it with a line in the log only. The lock, not this, keeps
# two pulls of a connection apart.
PULL_INSTANCES = 2


class Scheduler:
    """Owns the scheduled jobs of one data directory. `pull` runs one pull for a connection
    (in production `Services.pull`); `lock` locks due actions."""

    def __init__(
        self,
        connections: Callable[[], list[Connection]],
        pull: Callable[[Connection, str], Run | None],
        lock: Callable[[], int],
        retry_delays: tuple[int, ...] = RETRY_DELAYS,
        export: Callable[[Connection], object] | None = None,
        on_skipped: Callable[[Connection], object] | None = None,
        pull_workers: int = PULL_WORKERS,
    ) -> None:
        self._connections = connections
        self._pull = pull
        self._on_skipped = on_skipped
        # Exports what the connection has not exported yet; the watermark is in the
        # database (services.export_now), so a restart forgets nothing.
        self._export = export
        self._lock_actions = lock
        self._retry_delays = retry_delays
        self._scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            # However late a job's time was passed (the process frozen, the machine asleep,
            # the clock stepped forward), it runs, once: with a grace of 600 s APScheduler
            # dropped it with a log line, and a daily pull waited a day more.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            executors={
                "default": ThreadPoolExecutor(HOUSEKEEPING_THREADS),
                PULLS: ThreadPoolExecutor(pull_workers),
                EXPORTS: ThreadPoolExecutor(EXPORT_THREADS),
            },
        )
        self._run_locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        # Held while a job adds a retry and while shutdown begins: APScheduler's shutdown holds
        # its job store lock while it waits for running jobs, so a job adding a job then would
        # wait for it forever (and `serve` never ended on SIGTERM).
        self._jobs_guard = threading.Lock()
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self._jobs_guard:
            self._stopping = False
        self._scheduler.add_job(
            self._lock_job, IntervalTrigger(minutes=LOCK_JOB_MINUTES), id="lock-actions",
            next_run_time=dt.datetime.now(dt.UTC), replace_existing=True,
        )  # fmt: skip
        self.sync(catch_up=True)
        # Schedules edited by another process (`connectbatch connection add/edit/delete` beside
        # `serve`) reach this one within a minute; only the app's own edits called `sync`, so
        # a new CLI connection never ran and an edited one kept its old times until a restart.
        self.add_interval(self.sync, seconds=SYNC_SECONDS, job_id="schedule-sync")
        self._scheduler.start()

    def shutdown(self) -> None:
        """Waits for the running jobs; a failed pull among them schedules no retry (the run
        stays Failed, retried by hand or by its next scheduled time after a restart)."""
        with self._jobs_guard:
            self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def sync(self, catch_up: bool = False) -> None:
        """Make the jobs match the connections' schedules (after a create, edit, delete).
        With `catch_up` (at start), a pull or an export whose scheduled time passed while
        nothing ran (the server was down) runs once now, however many times it missed: a
        daily export due while `serve` was stopped waited a whole day more for its partner."""
        connections = self._connections()  # before the guard: a busy database may take a while
        with self._jobs_guard:  # the minute's sync is a job: see `_jobs_guard`
            if not self._stopping:
                self._sync(connections, catch_up)

    def _sync(self, connections: list[Connection], catch_up: bool) -> None:
        wanted: dict[str, tuple[Connection, Callable[..., None], list[object], str]] = {}
        for c in connections:
            if not c.schedule:
                continue
            if c.direction is Direction.INBOUND and c.methodology is Methodology.PULL:
                wanted[f"pull-{c.id}"] = (c, self._scheduled, [c.id, 0], PULLS)
            elif c.direction is Direction.OUTBOUND and self._export is not None:
                wanted[f"export-{c.id}"] = (c, self._scheduled_export, [c.id], EXPORTS)
        for job in self._scheduler.get_jobs():
            if job.id.startswith(("pull-", "export-")) and job.id not in wanted:
                job.remove()
        for job_id, (c, func, args, executor) in wanted.items():
            trigger = cron.trigger(c.schedule or "")
            existing = self._scheduler.get_job(job_id)
            if existing is not None and str(existing.trigger) == str(trigger):
                continue
            now = dt.datetime.now(dt.UTC)
            missed = catch_up and _missed(c, trigger, now)  # a pull or an export, once
            self._scheduler.add_job(
                func, trigger, args=args, id=job_id, replace_existing=True, name=f"{job_id} {c.name}",
                executor=executor, max_instances=PULL_INSTANCES if func == self._scheduled else 1,
                **({"next_run_time": now} if missed else {}),
            )  # fmt: skip

    def add_interval(self, job: Callable[[], object], seconds: int, job_id: str) -> None:
        """A recurring engine job (mailbox polling) that must never kill the scheduler."""

        def guarded() -> None:
            try:
                job()
            except Exception:
                log.exception("job %s failed", job_id)

        self._scheduler.add_job(guarded, IntervalTrigger(seconds=seconds), id=job_id, replace_existing=True)

    def next_run(self, connection_id: int) -> dt.datetime | None:
        job = self._scheduler.get_job(f"pull-{connection_id}")
        return getattr(job, "next_run_time", None) if job is not None else None

    # ------------------------------------------------------------------ runs

    def run_now(self, connection: Connection, trigger: str = "manual") -> Run | None:
        """Run a pull at once in the caller's thread; refuses when one is already running."""
        lock = self._lock_for(connection.id)
        if not lock.acquire(blocking=False):
            raise RunInProgressError(f"a run of {connection.name!r} is already in progress")
        try:
            return self._pull(connection, trigger)
        finally:
            lock.release()

    def is_running(self, connection_id: int) -> bool:
        return self._lock_for(connection_id).locked()

    def _scheduled(self, connection_id: int, attempt: int) -> None:
        connection = next((c for c in self._connections() if c.id == connection_id), None)
        if connection is None:
            return
        try:
            run = self.run_now(connection, "schedule" if attempt == 0 else "retry")
        except RunInProgressError:
            log.info("skipped: a run is in progress", extra={"connection_id": connection_id})
            if self._on_skipped is not None:
                try:
                    self._on_skipped(connection)
                except Exception:
                    log.exception("skip not recorded", extra={"connection_id": connection_id})
            return
        except Exception:  # a job must never kill the scheduler thread
            log.exception("scheduled run crashed", extra={"connection_id": connection_id})
            return
        if run is None:  # nothing new: a quiet poll
            return
        if _failed_itself(run) and attempt < len(self._retry_delays):
            when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._retry_delays[attempt])
            with self._jobs_guard:
                if self._stopping:
                    return
                # (under the guard: a job store lookup during shutdown would never return)
                if self._scheduled_before(connection_id, when + RETRY_MARGIN):
                    return  # the schedule tries again as soon: a retry beside it only collided
                self._scheduler.add_job(
                    self._scheduled, DateTrigger(when), args=[connection_id, attempt + 1],
                    id=f"retry-{connection_id}", replace_existing=True, executor=PULLS,
                )  # fmt: skip

    def _scheduled_before(self, connection_id: int, when: dt.datetime) -> bool:
        """Whether the connection's own schedule runs it again by `when`. A pull every few
        minutes against a server that was down got a retry at the time of its next
        scheduled run: one of the two found the other's run going, and every minute the
        history said a trigger was skipped while a run was going."""
        job = self._scheduler.get_job(f"pull-{connection_id}")
        at: dt.datetime | None = getattr(job, "next_run_time", None)
        return at is not None and at <= when

    def _scheduled_export(self, connection_id: int) -> None:
        """Export what was loaded or changed since the previous export (its watermark is
        stored with each export, not held here)."""
        connection = next((c for c in self._connections() if c.id == connection_id), None)
        if connection is None or self._export is None:
            return
        try:
            self._export(connection)
        except Exception:
            log.exception("scheduled export failed", extra={"connection_id": connection_id})

    def _lock_job(self) -> None:
        try:
            locked = self._lock_actions()
            if locked:
                log.info("locked %d actions", locked)
        except Exception:
            log.exception("lock job failed")

    def _lock_for(self, connection_id: int) -> threading.Lock:
        with self._guard:
            return self._run_locks.setdefault(connection_id, threading.Lock())


def _failed_itself(run: Run) -> bool:
    """Whether `run` failed for a cause outside its files (the server unreachable, the
    connection cut mid-transfer, the deadline): every file it recorded was loaded or skipped,
    none rejected. A retry then takes what the failure left behind. Only a run that saw no file
    was retried before: a connection cut after one file went in left the rest waiting for the
    next scheduled time, a day for a daily pull. A run failed by a rejected file is not
    retried (the same bytes fail the same way); nor one that also held a file for review,
    which the counts cannot tell apart from it (its next scheduled time takes the rest)."""
    if run.status is not RunStatus.FAILED:
        return False
    return run.files_loaded + run.files_skipped >= run.files_seen


def _missed(c: Connection, trigger: BaseTrigger, now: dt.datetime) -> bool:
    """Whether a scheduled time of `c` passed since it last ran (or was created): jobs live in
    memory, so a daily pull whose time came while the server was down waited a whole day
    more. A quiet poll (nothing new) leaves no trace, so a start may poll once more than
    needed: it takes nothing twice."""
    since = max((t for t in (c.last_active, c.created_at) if t is not None), default=None)
    if since is None:
        return False
    due = trigger.get_next_fire_time(None, since.astimezone(dt.UTC) + dt.timedelta(seconds=1))
    return due is not None and due <= now
