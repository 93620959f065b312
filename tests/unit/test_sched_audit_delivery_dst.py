"""Expected delivery on the nights the clocks change, in the connection's own time zone.

Where the clocks skip midnight (America/Santiago on 2027-09-05: 00:00 becomes 01:00), a file
expected `daily by 00:30` was expected on no day at all that day: no late or missing alert,
and the calendar showed nothing expected."""

from __future__ import annotations

import datetime as dt

from connectbatch.delivery import cadence

UTC = dt.UTC


def test_a_deadline_in_the_hour_santiago_skips_at_midnight_comes_when_the_clocks_went_forward() -> None:
    found = cadence.deadlines(
        "daily by 00:30",
        "America/Santiago",
        dt.datetime(2027, 9, 3, tzinfo=UTC),
        dt.datetime(2027, 9, 7, tzinfo=UTC),
    )
    assert found == [
        dt.datetime(2027, 9, 3, 4, 30, tzinfo=UTC),  # 00:30 -04
        dt.datetime(2027, 9, 4, 4, 30, tzinfo=UTC),
        dt.datetime(2027, 9, 5, 4, 30, tzinfo=UTC),  # 00:30 skipped: 01:30 -03, once the clocks went forward
        dt.datetime(2027, 9, 6, 3, 30, tzinfo=UTC),  # 00:30 -03
    ]


def test_a_slot_is_late_on_the_day_the_clocks_skip_midnight() -> None:
    grace = dt.timedelta(minutes=30)
    day = dt.datetime(2027, 9, 5, 4, 30, tzinfo=UTC)
    (slot,) = cadence.slots("daily by 00:30", "America/Santiago", grace, day - dt.timedelta(hours=2), day)
    assert cadence.state(slot, [], day + dt.timedelta(hours=1)) is cadence.SlotState.OVERDUE


def test_a_time_new_york_skips_comes_an_hour_later_and_a_repeated_time_once() -> None:
    spring = cadence.deadlines(
        "daily by 02:30",
        "America/New_York",
        dt.datetime(2027, 3, 13, tzinfo=UTC),
        dt.datetime(2027, 3, 16, tzinfo=UTC),
    )
    fall = cadence.deadlines(
        "daily by 01:30",
        "America/New_York",
        dt.datetime(2027, 11, 6, tzinfo=UTC),
        dt.datetime(2027, 11, 9, tzinfo=UTC),
    )
    assert [f"{d:%m-%d %H:%M}" for d in spring] == ["03-13 07:30", "03-14 07:30", "03-15 06:30"]
    assert [f"{d:%m-%d %H:%M}" for d in fall] == ["11-06 05:30", "11-07 05:30", "11-08 06:30"]
