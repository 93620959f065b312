"""Cron expressions read the way people write them.

APScheduler 3's `CronTrigger.from_crontab` passes the day-of-week field through unchanged,
and APScheduler counts 0 as Monday, while cron (and every partner's crontab, and the
plain-language preview) counts 0 and 7 as Sunday: `0 6 * * 1` ran on Tuesdays. Every place
that turns a schedule into a trigger (the scheduler, the check on save, the app's preview)
goes through `trigger`, which rewrites a numbered day of the week into day names first.

With both the day of the month and the day of the week restricted, cron runs on either
(`0 6 1 * 1`: the 1st, and every Monday), as the preview's words say; APScheduler wants both
(a Monday the 1st: twice a year), so such a schedule is two triggers, whichever comes first.
A field starting with `*` (`*/2` too) counts as unrestricted, as in cron: then both apply.

crontab's shorthands (`@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`,
`@annually`) stand for their five fields, as in every partner's crontab and cron's manual;
they were refused as "wrong number of fields". `@reboot` has no times: it is refused saying
why (a time passed while the engine was down runs once when it starts anyway).
"""

from __future__ import annotations

import datetime as dt

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def expand(expression: str) -> str:
    """The five fields of `expression` (a shorthand written out; anything else as it is)."""
    text = expression.strip()
    if text.lower() == "@reboot":
        raise ValueError(
            "@reboot names no time: give a schedule (a pull whose time passed while the engine "
            "was down runs once when it starts)"
        )
    return SHORTHANDS.get(text.lower(), text)


def trigger(expression: str, timezone: dt.tzinfo = dt.UTC) -> BaseTrigger:
    """The trigger of a five-field cron expression (UTC unless `timezone`); ValueError when it
    is not one."""
    fields = expand(expression).split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    days = day_of_week(weekday)

    def on(day: str, days: str) -> CronTrigger:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=days, timezone=timezone
        )

    if day.startswith(("*", "?")) or weekday.startswith(("*", "?")):  # cron's test: a field
        return on(day, days)  # starting with * (also */2) restricts nothing, the other decides
    return OrTrigger([on(day, "*"), on("*", days)])


def day_of_week(field: str) -> str:
    """A cron day-of-week field (numbers 0-7 with 0 and 7 Sunday, names, ranges, lists,
    steps) as APScheduler day names; `*` and `?` stay as they are."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        base, _, step_text = item.partition("/")
        step = _number(step_text, "step") if step_text else 1
        if step < 1:
            raise ValueError(f"day-of-week step {step_text!r} must be at least 1")
        if base == "*":
            first, last = 0, 6
        else:
            start_text, dash, end_text = base.partition("-")
            first = _day(start_text)
            last = _day(end_text, end=True) if dash else (6 if step_text else first)
            if last < first:
                raise ValueError(f"day-of-week range {base!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _day(text: str, end: bool = False) -> int:
    """A day as cron counts it (0-7, or a name); 7 is Sunday at the end of a range."""
    if text in DAY_NAMES:
        return DAY_NAMES.index(text) or (7 if end else 0)
    day = _number(text, "day of the week")
    if not 0 <= day <= 7:
        raise ValueError(f"day of the week {text!r} must be 0-7 (0 and 7 are Sunday) or a name")
    return day


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what} {text!r} is not a number")
    return int(text)
