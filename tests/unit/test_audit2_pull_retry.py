"""A scheduled pull that failed on the partner's server is retried, even when files went in
before the failure.

The bug (found against a real sshd behind a proxy that cut the connection 1 MB into the second
of three files): the run was Failed with a clear message and the first file loaded, but the
scheduler retried only a Failed run that saw no file, so the other two files waited for the
connection's next scheduled time (a day, for a daily pull) though nothing was wrong with them.
A run failed by one of its files (rejected as a whole) is still not retried: the same bytes
would fail the same way.
"""

from __future__ import annotations

import datetime as dt

from connectbatch.engine.scheduler import Scheduler
from connectbatch.models import Connection, Direction, Method, Methodology, Run, RunStatus

DAILY = Connection(
    "Daily partner", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
    id=7, schedule="0 6 * * *",
)  # fmt: skip


def _run(**counts: int) -> Run:
    return Run(
        id=1, connection_id=DAILY.id or 0, trigger="schedule", status=RunStatus.FAILED,
        started_at=dt.datetime.now(dt.UTC), reason="SFTP 127.0.0.1:22: downloading /out/b.csv "
        "failed: the server closed the connection", **counts,
    )  # fmt: skip


def _retry_after(run: Run) -> bool:
    """Whether the scheduler, its pull having ended in `run`, scheduled a retry."""
    scheduler = Scheduler(lambda: [DAILY], lambda c, t: run, lambda: 0)
    scheduler.start()
    try:
        scheduler._scheduled(DAILY.id or 0, 0)
        return scheduler._scheduler.get_job(f"retry-{DAILY.id}") is not None
    finally:
        scheduler.shutdown()


def test_a_pull_cut_off_after_a_file_went_in_is_retried() -> None:
    assert _retry_after(_run(files_seen=1, files_loaded=1))


def test_a_pull_cut_off_after_files_were_loaded_or_skipped_is_retried() -> None:
    assert _retry_after(_run(files_seen=3, files_loaded=1, files_skipped=2))


def test_a_pull_that_reached_nothing_is_retried_as_before() -> None:
    assert _retry_after(_run())


def test_a_pull_failed_by_a_rejected_file_is_not_retried() -> None:
    assert not _retry_after(_run(files_seen=2, files_loaded=1))
