"""Schedules run on the days cron means (engine/cron.py): a numbered day of the week counts
0 and 7 as Sunday, as in every crontab, not 0 as Monday as APScheduler 3 reads it."""

from __future__ import annotations

import datetime as dt

import pytest

from connectbatch.engine import cron
from connectbatch.engine.scheduler import Scheduler
from connectbatch.models import Connection, Direction, Method, Methodology

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
