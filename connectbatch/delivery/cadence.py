"""An expected cadence, written the way people say it, as deadlines on a calendar.

    daily by 06:00 | weekdays by 09:00 | weekly on mon by 12:00 | "30 5 * * 1-5" (cron)

Times are in the connection's time zone; a cron expression (five fields, read by
`engine.cron` rules: 0 and 7 are Sunday) gives the deadlines themselves. Without "by" the
deadline is the end of the day (23:59).

Each deadline is one *slot*. A file is on time for a slot when it arrives by the deadline
plus the grace period; the slot's window runs from the previous slot's window end to the
later of (deadline + grace) and the midpoint to the next deadline, so every moment belongs to
exactly one slot: a file a few hours late still counts for its own day (late), one that comes
just before the next deadline counts for the next (and the earlier slot is missing).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from enum import StrEnum

from apscheduler.triggers.base import BaseTrigger

_WORDS = re.compile(
    r"^\s*(?P<every>daily|weekdays|weekly\s+on\s+(?P<days>[a-z]{3}(?:\s*,\s*[a-z]{3})*))"
    r"(?:\s+by\s+(?P<h>\d{1,2}):(?P<m>\d{2}))?\s*$",
    re.IGNORECASE,
)
_END_OF_DAY = (23, 59)
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # engine.cron's, cron's order


class SlotState(StrEnum):
    """What became of one expected file (and files nobody expected)."""

    RECEIVED = "received"  # arrived by the deadline + grace
    LATE = "late"  # arrived after the deadline + grace, within its window
    MISSING = "missing"  # the window closed without a file
    OVERDUE = "overdue"  # past deadline + grace, window still open, nothing yet
    PENDING = "pending"  # not due yet
    EXTRA = "extra"  # a file in a window whose expected file had already come (or no slot)


@dataclass(frozen=True)
class Slot:
    deadline: dt.datetime  # UTC
    due: dt.datetime  # deadline + grace (UTC)
    start: dt.datetime  # the window: (start, end]
    end: dt.datetime


def to_cron(expect: str) -> str:
    """The five-field cron expression of the deadlines; ValueError when `expect` is neither
    the words above nor a cron expression."""
    from connectbatch.engine import cron  # lazily: the engine package imports the services

    text = expect.strip()
    match = _WORDS.match(text)
    if match is None:
        cron.trigger(text)  # raises ValueError with the reason
        return text
    hour, minute = (int(match["h"]), int(match["m"])) if match["h"] else _END_OF_DAY
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"{match['h']}:{match['m']} is not a time of day (00:00-23:59)")
    every = match["every"].lower()
    if every == "daily":
        days = "*"
    elif every == "weekdays":
        days = "mon-fri"
    else:
        names = [d.strip().lower() for d in (match["days"] or "").split(",")]
        unknown = [d for d in names if d not in DAY_NAMES]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")
        days = ",".join(names)
    return f"{minute} {hour} * * {days}"


def check(expect: str) -> str:
    """`expect` tidied (the words in lower case); ValueError naming what is wrong. A file
    more often than hourly is a stream, not a batch cadence: refused."""
    to_cron(expect)
    week = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    if len(deadlines(expect, "UTC", week, week + dt.timedelta(days=7, seconds=-1))) > 7 * 24:
        raise ValueError("files expected more often than hourly")
    text = " ".join(expect.split())
    return text.lower() if _WORDS.match(text) else text


def _wall_clock_trigger(expect: str) -> BaseTrigger:
    """The cron trigger of `expect` over wall-clock times (read as UTC, never converted)."""
    from connectbatch.engine import cron

    return cron.trigger(to_cron(expect))


def deadlines(expect: str, timezone: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The deadlines in [start, end], UTC, oldest first.

    The times are found on the zone's wall clock and only then placed in the zone, so the
    night the clocks change is read as people read it: a wall-clock time that happens twice
    that night is one deadline, the first (cron's rule for a fixed time), so a daily file is
    not expected twice; a time the clocks skip comes when they have gone forward (02:30 on the
    night New York jumps from 02:00 to 03:00 is 03:30). APScheduler asked for times in the
    zone itself dropped the whole day where the clocks skip midnight (Santiago, Asunción:
    `daily by 00:30` expected nothing that day)."""
    zone = zoneinfo.ZoneInfo(timezone)
    trigger = _wall_clock_trigger(expect)
    margin = dt.timedelta(hours=26)  # more than any zone's offset change: no edge time lost
    wall_start = start.astimezone(zone).replace(tzinfo=dt.UTC) - margin
    wall_end = end.astimezone(zone).replace(tzinfo=dt.UTC) + margin
    found: list[dt.datetime] = []
    at = trigger.get_next_fire_time(None, wall_start)
    while at is not None and at <= wall_end and len(found) < 5000:
        # fold=0: the first of a repeated time; a skipped one with the offset before the jump
        instant = at.replace(tzinfo=zone).astimezone(dt.UTC)
        if start <= instant <= end and (not found or instant > found[-1]):
            found.append(instant)
        at = trigger.get_next_fire_time(at, at + dt.timedelta(seconds=1))
    return found


def slots(
    expect: str, timezone: str, grace: dt.timedelta, start: dt.datetime, end: dt.datetime
) -> list[Slot]:
    """The slots whose deadline falls in [start, end], each with its window."""
    # One deadline either side, for the windows' edges.
    wide = deadlines(expect, timezone, start - dt.timedelta(days=32), end + dt.timedelta(days=32))
    ends = [
        max(d + grace, d + (wide[i + 1] - d) / 2) if i + 1 < len(wide) else d + grace
        for i, d in enumerate(wide)
    ]  # fmt: skip
    out = []
    for i, d in enumerate(wide):
        if start <= d <= end:
            begin = ends[i - 1] if i > 0 else d - dt.timedelta(days=1)
            out.append(Slot(deadline=d, due=d + grace, start=begin, end=max(ends[i], begin)))
    return out


def state(slot: Slot, arrived: list[dt.datetime], now: dt.datetime) -> SlotState:
    """The state of `slot` at `now`, given the arrivals that fell in its window (sorted)."""
    seen = [a for a in arrived if slot.start < a <= slot.end and a <= now]
    if seen:
        return SlotState.RECEIVED if seen[0] <= slot.due else SlotState.LATE
    if now >= slot.end:
        return SlotState.MISSING
    if now >= slot.due:
        return SlotState.OVERDUE
    return SlotState.PENDING
