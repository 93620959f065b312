"""A cron schedule in plain words, with its next run times, for the wizard and the connection
page: a raw `0 6 * * 1` is easy to get wrong.

The words come from cron-descriptor (a maintained library); the times come from the very
trigger the scheduler builds (connectbatch/engine/cron.py, which reads a numbered day of the
week as cron does: 0 and 7 are Sunday), so the preview shows when runs really happen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cron_descriptor import Options, get_description

from connectbatch.engine import cron

NEXT_RUNS = 3


@dataclass(frozen=True)
class SchedulePreview:
    description: str  # "At 06:00, only on Monday"
    next_runs: tuple[dt.datetime, ...]  # UTC


def preview(expression: str | None, now: dt.datetime | None = None) -> SchedulePreview | None:
    """The plain-language description and next run times of a cron expression; None when it is
    empty (only Run now) or not a cron expression (the services say why on save)."""
    text = (expression or "").strip()
    if not text:
        return None
    try:
        trigger = cron.trigger(text)
        options = Options()
        options.use_24hour_time_format = True
        words = get_description(cron.expand(text), options)  # "@daily": its five fields
    except Exception:  # the library raises its own errors and ValueError: both mean "not cron"
        return None
    moment = now or dt.datetime.now(dt.UTC)
    runs: list[dt.datetime] = []
    previous: dt.datetime | None = None
    for _ in range(NEXT_RUNS):
        found = trigger.get_next_fire_time(previous, moment)
        if found is None:
            break
        runs.append(found.astimezone(dt.UTC))
        previous, moment = found, found + dt.timedelta(microseconds=1)
    return SchedulePreview(f"{words} (UTC)", tuple(runs))


def lines(expression: str | None, now: dt.datetime | None = None) -> list[str]:
    """The preview as Markdown lines (empty: nothing to show)."""
    found = preview(expression, now)
    if found is None:
        return []
    out = [f"**{found.description}**"]
    if found.next_runs:
        out.append("Next runs: " + ", ".join(f"{t:%a %Y-%m-%d %H:%M} UTC" for t in found.next_runs))
    else:  # saving refuses it now; one stored before that shows why it never ran
        out.append("Never runs: no date matches this schedule (e.g. day 31 of February)")
    return out
