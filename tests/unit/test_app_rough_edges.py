"""Issue 11's app rough edges that need no browser: the schedule in plain words with its next
runs, the Create summary, the charts' legend and points, and the action picker's order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from app_pages import _schedule
from app_pages._wizard_summary import review_rows
from app_pages.actions import _describe, picker_actions
from connectbatch.explorer import ActionPage
from connectbatch.models import Action, ActionStatus, Connection, Direction, Method, Methodology
from connectbatch.services import CredentialInput

FRIDAY = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def test_a_schedule_reads_in_plain_words_with_its_next_three_runs() -> None:
    found = _schedule.preview("0 6 * * *", FRIDAY)
    assert found is not None
    assert found.description == "At 06:00 (UTC)"
    assert [f"{t:%a %d %H:%M}" for t in found.next_runs] == ["Sat 05 06:00", "Sun 06 06:00", "Mon 07 06:00"]
    weekdays = _schedule.preview("*/15 9-17 * * mon-fri", FRIDAY)
    assert weekdays is not None and "Monday through Friday" in weekdays.description
    assert [f"{t:%H:%M}" for t in weekdays.next_runs] == ["12:00", "12:15", "12:30"]


def test_a_numbered_weekday_reads_and_runs_as_in_cron() -> None:
    """`1` is Monday in the words and in the run times (APScheduler alone ran it on Tuesday)."""
    found = _schedule.preview("0 6 * * 1", FRIDAY)
    assert found is not None and "Monday" in found.description
    assert [f"{t:%a %d}" for t in found.next_runs] == ["Mon 07", "Mon 14", "Mon 21"]


def test_no_schedule_or_a_wrong_one_has_no_preview() -> None:
    assert _schedule.preview(None) is None
    assert _schedule.preview("  ") is None
    assert _schedule.preview("every day") is None
    assert _schedule.lines("61 * * * *") == []


def summary(c: Connection, login: CredentialInput | None = None) -> dict[str, str]:
    return {r["Setting"]: r["Value"] for r in review_rows(c, login)}


def test_the_create_summary_names_schedule_user_return_email_and_lock_period() -> None:
    pull = Connection(
        "Invoca", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL, pattern="*.csv",
        host="sftp.example.com", folder="/out", schedule="0 6 * * *", return_email="ops@p.example",
        lock_days=45,
    )  # fmt: skip
    rows = summary(pull, CredentialInput(name="x", username="acme"))
    assert rows["User"] == "acme"
    assert rows["Schedule"] == "0 6 * * * — At 06:00 (UTC)"
    assert rows["Return e-mail"] == "ops@p.example"
    assert rows["Lock period"] == "45 days after the event"

    push = Connection("Push", "conversions", Direction.INBOUND, Method.FTP, Methodology.PUSH, pattern="*.csv")
    rows = summary(push)
    assert "provisioned" in rows["User"]
    assert rows["Return e-mail"].startswith("none")
    assert rows["Lock period"] == "30 days after the event"
    assert "Schedule" not in rows  # a push runs when files arrive

    export = Connection(
        "Export", "conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US, pattern="*.csv",
        schedule="0 * * * *",
    )  # fmt: skip
    rows = summary(export)
    assert rows["Schedule"].startswith("0 * * * * — Every hour")
    assert "Lock period" not in rows and "Return e-mail" not in rows


def action(i: int, status: ActionStatus, days_ago: int, campaign: int | None = 1001) -> Action:
    event = FRIDAY - dt.timedelta(days=days_ago)
    return Action(
        i, 1, 1, i, "call_conversions", f"sess-{i}", event, Decimal("12.50"), Decimal("12.50"), status,
        lock_at=event + dt.timedelta(days=30), campaign_id=campaign,
    )  # fmt: skip


def test_the_picker_offers_pending_then_newest_and_never_a_locked_action() -> None:
    page = ActionPage([action(1, ActionStatus.MODIFIED, 1), action(2, ActionStatus.PENDING, 40)], 2, FRIDAY)
    pool = ActionPage([action(3, ActionStatus.PENDING, 5), action(4, ActionStatus.PENDING, 2)], 2, FRIDAY)
    assert list(picker_actions(page, pool)) == [4, 3, 1]  # 2 is locked
    label = _describe(action(7, ActionStatus.PENDING, 1, campaign=2002))
    for searched in ("A-000007", "sess-7", "campaign 2002", "12.50", "PENDING"):
        assert searched in label


def test_the_picker_shows_a_hostile_source_key_escaped() -> None:
    hostile = action(8, ActionStatus.PENDING, 1)
    hostile.source_key = "sess\x1b[31m-8\n"
    assert "\x1b" not in _describe(hostile) and "\\x1b" in _describe(hostile)


def test_a_schedule_with_no_date_says_it_never_runs() -> None:
    found = _schedule.preview("0 0 31 2 *", FRIDAY)
    assert found is not None and found.next_runs == ()
    assert _schedule.lines("0 0 31 2 *", FRIDAY)[1].startswith("Never runs: no date matches this schedule")
