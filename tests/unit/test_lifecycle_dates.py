"""When a modifications row's change happened (`lifecycle.event_time`): a ModificationDate up to
14 hours ahead counts as now (a clock or time-zone skew), but never lets through a change dated
at or after the action's lock: the README's rule holds for the date as sent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from connectbatch.models import Action, ActionStatus
from connectbatch.pipeline.lifecycle import DateError, event_time

NOW = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)


def action(locks_in: dt.timedelta) -> Action:
    return Action(
        id=5,
        connection_id=1,
        run_id=1,
        line=2,
        data_type="call_conversions",
        source_key="c-5",
        event_date=NOW - dt.timedelta(days=29),
        amount=Decimal("10.00"),
        original_amount=Decimal("10.00"),
        status=ActionStatus.PENDING,
        lock_at=NOW + locks_in,
    )


def test_a_date_a_few_hours_ahead_and_before_the_lock_counts_as_now() -> None:
    assert event_time(NOW + dt.timedelta(hours=1), action(dt.timedelta(hours=2)), NOW) == NOW


@pytest.mark.parametrize("ahead", [dt.timedelta(hours=2), dt.timedelta(hours=10)], ids=["at", "after"])
def test_a_date_a_few_hours_ahead_at_or_after_the_lock_is_refused(ahead: dt.timedelta) -> None:
    # Was taken as now first, and now is before the lock: the row applied
    with pytest.raises(DateError, match="at or after A-000005 locks"):
        event_time(NOW + ahead, action(dt.timedelta(hours=2)), NOW)
