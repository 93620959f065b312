"""Schedules run on the days cron means (engine/cron.py): a numbered day of the week counts
0 and 7 as Sunday, as in every crontab, not 0 as Monday as APScheduler 3 reads it."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import pytest

from connectbatch.engine import cron
from connectbatch.engine.scheduler import Scheduler
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import InvalidInputError, Services
from connectbatch.settings import Settings

FRIDAY = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def next_days(expression: str, count: int = 3) -> list[str]:
    """The days of the next runs after Friday 2026-12-04 12:00 UTC."""
    trigger = cron.trigger(expression)
    out: list[str] = []
    previous, moment = None, FRIDAY
    for _ in range(count):
        found = trigger.get_next_fire_time(previous, moment)
        assert found is not None
        out.append(f"{found:%a}")
        previous, moment = found, found + dt.timedelta(seconds=1)
    return out


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1", ["Mon", "Mon", "Mon"]),
        ("0", ["Sun", "Sun", "Sun"]),
        ("7", ["Sun", "Sun", "Sun"]),
        ("1-5", ["Fri", "Mon", "Tue"]),
        ("mon-fri", ["Fri", "Mon", "Tue"]),
        ("5,6", ["Fri", "Sat", "Fri"]),
        ("*/2", ["Sat", "Sun", "Tue"]),
        ("1-5/2", ["Fri", "Mon", "Wed"]),
        ("5-7", ["Fri", "Sat", "Sun"]),
        ("SAT", ["Sat", "Sat", "Sat"]),
    ],
)
def test_a_numbered_day_of_the_week_is_cron_s(field: str, days: list[str]) -> None:
    assert next_days(f"0 13 * * {field}") == days


@pytest.mark.parametrize("expression", ["0 6 * * 8", "0 6 * * 5-1", "0 6 * * x", "0 6 * *", "0 6 * * */0"])
def test_what_cron_would_refuse_is_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        cron.trigger(expression)


def test_the_scheduler_runs_a_monday_schedule_on_monday() -> None:
    """The bug: `0 6 * * 1` on a pull connection ran every Tuesday."""
    pull = Connection("Mondays", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
                      id=1, schedule="0 6 * * 1")  # fmt: skip
    scheduler = Scheduler(lambda: [pull], lambda c, t: None, lambda: 0)
    scheduler.start()
    try:
        when = scheduler.next_run(1)
    finally:
        scheduler.shutdown()
    assert when is not None and (when.weekday(), when.hour, when.minute) == (0, 6, 0)  # Monday 06:00


def _push(schedule: str) -> Connection:
    return Connection("Calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                      schedule=schedule)  # fmt: skip


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("0 0 31 2 *", "never fires: there is no 31 February"),
        ("0 0 30 feb *", "never fires: there is no 30 February"),
        ("0 0 31 4,jun *", "never fires: there is no 31 April or 31 June"),
        ("0 0 30-31 2 *", "never fires: no date matches"),
    ],
)
def test_a_schedule_that_never_fires_is_refused(tmp_path: Path, expression: str, says: str) -> None:
    services = Services(Settings(home=tmp_path))
    with pytest.raises(InvalidInputError) as refused:
        services.create_connection(_push(expression), partner=services.add_partner("Acme", "brand").id)
    assert refused.value.field == "schedule" and says in str(refused.value), str(refused.value)
    assert services.connections() == []


def test_a_leap_day_schedule_is_kept_and_an_edit_to_no_date_is_refused(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path))
    services.create_connection(_push("0 0 29 2 *"), partner=services.add_partner("Acme", "brand").id)
    with pytest.raises(InvalidInputError, match="there is no 31 February"):
        services.update_connection("Calls", schedule="0 0 31 2 *")
    assert services.connection("Calls").schedule == "0 0 29 2 *"


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 6 1 * 1", ["Mon 12-07", "Mon 12-14", "Mon 12-21", "Mon 12-28", "Fri 01-01"]),
        ("0 6 1,15 * 5", ["Fri 12-11", "Tue 12-15", "Fri 12-18", "Fri 12-25", "Fri 01-01"]),
        ("0 6 1 * *", ["Fri 01-01", "Mon 02-01", "Mon 03-01", "Thu 04-01", "Sat 05-01"]),
        ("0 6 * * 1", ["Mon 12-07", "Mon 12-14", "Mon 12-21", "Mon 12-28", "Mon 01-04"]),
    ],
)
def test_a_day_of_the_month_and_a_day_of_the_week_are_either_as_in_cron(
    expression: str, days: list[str]
) -> None:
    """With both fields restricted cron runs on either (the 1st, and every Monday), as the
    app's plain-language preview says ("on day 1 of the month, or on Monday"); APScheduler
    wanted both, so `0 6 1 * 1` ran on a Monday the 1st: twice a year."""
    trigger = cron.trigger(expression)
    out: list[str] = []
    previous, moment = None, FRIDAY
    for _ in range(5):
        found = trigger.get_next_fire_time(previous, moment)
        assert found is not None and (found.hour, found.minute) == (6, 0)
        out.append(f"{found:%a %m-%d}")
        previous, moment = found, found + dt.timedelta(seconds=1)
    assert out == days


def test_the_scheduler_logs_no_line_for_each_job_it_adds_or_runs(caplog: pytest.LogCaptureFixture) -> None:
    """`connectbatch serve` logs at INFO: APScheduler's own INFO lines (a job added, a job
    running, a job done) came by the thousand a day and buried the runs' lines."""
    locked = threading.Event()

    def lock() -> int:
        locked.set()
        return 0

    scheduler = Scheduler(lambda: [], lambda c, t: None, lock)
    with caplog.at_level(logging.INFO):
        scheduler.add_interval(lambda: None, 3600, "hourly")
        scheduler.start()  # the lock job runs at once
        try:
            assert locked.wait(10)
        finally:
            scheduler.shutdown()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")] == []
