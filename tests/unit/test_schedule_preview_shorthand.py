"""The schedule field's preview reads crontab shorthands as the scheduler does: `@daily` was
saved and run, but the preview showed nothing (the description library reads five fields)."""

from __future__ import annotations

import datetime as dt

from app_pages._schedule import preview


def test_a_shorthand_is_described_with_its_next_runs() -> None:
    shown = preview("@daily", dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC))
    assert shown is not None
    assert "00:00" in shown.description, shown.description
    assert shown.next_runs[0] == dt.datetime(2026, 12, 8, 0, 0, tzinfo=dt.UTC)
