"""Expected cadences read as people write them, their slots, and cadences learned from
arrival times (issue 12, part 5)."""

from __future__ import annotations

import datetime as dt

import pytest

from connectbatch.delivery import cadence, learn
from connectbatch.delivery.cadence import SlotState

UTC = dt.UTC
MONDAY = dt.datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("words", "expression"),
    [
        ("daily by 06:00", "0 6 * * *"),
        ("Weekdays by 9:30", "30 9 * * mon-fri"),
        ("weekly on mon", "59 23 * * mon"),
        ("weekly on mon, thu by 12:00", "0 12 * * mon,thu"),
        ("0 6 * * 1-5", "0 6 * * 1-5"),
    ],
)
def test_cadences_become_cron_expressions(words: str, expression: str) -> None:
    assert cadence.to_cron(words) == expression


@pytest.mark.parametrize("bad", ["hourly", "daily by 25:00", "weekly on funday", "0 6 * *"])
def test_what_is_no_cadence_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        cadence.to_cron(bad)


def test_more_often_than_hourly_is_no_batch_cadence() -> None:
    assert cadence.check("0 * * * *") == "0 * * * *"
    with pytest.raises(ValueError, match="more often than hourly"):
        cadence.check("*/5 * * * *")


def test_a_deadline_is_in_the_connections_time_zone() -> None:
    [deadline] = cadence.deadlines(
        "daily by 06:00", "America/New_York", MONDAY, MONDAY + dt.timedelta(days=1)
    )
    assert deadline == dt.datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # EST is UTC-5


def test_a_slots_window_reaches_midway_to_the_next_deadline() -> None:
    grace = dt.timedelta(hours=2)
    [slot] = cadence.slots("daily by 06:00", "UTC", grace, MONDAY, MONDAY + dt.timedelta(hours=12))
    six = MONDAY.replace(hour=6)
    assert (slot.deadline, slot.due) == (six, six + grace)
    assert (slot.start, slot.end) == (six - dt.timedelta(hours=12), six + dt.timedelta(hours=12))
    assert cadence.state(slot, [], six) is SlotState.PENDING
    assert cadence.state(slot, [], six + dt.timedelta(hours=3)) is SlotState.OVERDUE
    assert cadence.state(slot, [], six + dt.timedelta(hours=12)) is SlotState.MISSING
    assert (
        cadence.state(slot, [six + dt.timedelta(hours=1)], six + dt.timedelta(hours=12)) is SlotState.RECEIVED
    )
    assert cadence.state(slot, [six + dt.timedelta(hours=5)], six + dt.timedelta(hours=12)) is SlotState.LATE


def arrivals(days: list[int], hour: int = 8) -> list[dt.datetime]:
    return [MONDAY + dt.timedelta(days=d, hours=hour, minutes=5 * (d % 4)) for d in days]


def test_weekday_files_suggest_weekdays() -> None:
    found = learn.suggest(arrivals([0, 1, 2, 3, 4, 7, 8, 9, 10, 11]), "UTC")
    assert found is not None and found.expect == "weekdays by 08:15" and found.confidence == 1.0


def test_monday_files_suggest_weekly_on_mon_with_less_confidence_for_fewer_weeks() -> None:
    found = learn.suggest(arrivals([0, 7, 14, 21]), "UTC")
    assert found is not None and found.expect == "weekly on mon by 08:15"
    assert found.confidence == 0.4  # 4 of the 10 days needed for full confidence


def test_irregular_or_few_files_suggest_less_or_nothing() -> None:
    assert learn.suggest(arrivals([0, 1]), "UTC") is None
    patchy = learn.suggest(arrivals([0, 2, 3, 6, 9, 10, 13]), "UTC")
    assert patchy is not None and patchy.confidence < 0.7


@pytest.mark.parametrize("expect", ["daily by 01:30", "30 1 * * *", "0 * * * *"])
def test_the_night_clocks_go_back_does_not_stop_the_calendar(expect: str) -> None:
    """New York's clocks went back on 2026-11-01 (01:00-02:00 twice). Stepping one second on
    from a deadline of the repeated hour in wall-clock time landed on the same deadline again:
    5000 copies of it, and no deadline after that day (no late or missing alert for weeks)."""
    start = dt.datetime(2026, 10, 30, tzinfo=UTC)
    found = cadence.deadlines(expect, "America/New_York", start, start + dt.timedelta(days=5))
    assert len(found) == len(set(found)) and found == sorted(found)
    assert found[-1] > dt.datetime(2026, 11, 3, tzinfo=UTC)


def test_a_daily_deadline_in_the_repeated_hour_is_one_slot_that_day() -> None:
    """01:30 happens twice on the night the clocks go back; a daily file is expected once
    (cron's rule for a fixed time), not twice with the second slot reported missing."""
    start = dt.datetime(2026, 10, 31, 12, tzinfo=UTC)
    found = cadence.deadlines("daily by 01:30", "America/New_York", start, start + dt.timedelta(days=2))
    assert found == [dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC), dt.datetime(2026, 11, 2, 6, 30, tzinfo=UTC)]


def test_a_deadline_in_the_skipped_hour_comes_when_the_clocks_have_gone_forward() -> None:
    start = dt.datetime(2026, 3, 7, 12, tzinfo=UTC)
    found = cadence.deadlines("daily by 02:30", "America/New_York", start, start + dt.timedelta(days=2))
    assert found == [dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC), dt.datetime(2026, 3, 9, 6, 30, tzinfo=UTC)]


def test_a_cadence_on_a_day_of_the_month_or_a_weekday_is_either() -> None:
    """The same cron rule for expected delivery: `0 6 1 * 1` is the 1st and every Monday."""
    start = dt.datetime(2026, 12, 1, tzinfo=UTC)
    found = cadence.deadlines("0 6 1 * 1", "UTC", start, start + dt.timedelta(days=14))
    assert [f"{d:%a %d}" for d in found] == ["Tue 01", "Mon 07", "Mon 14"]
