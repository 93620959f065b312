"""Expected vs received files per connection per day: the delivery calendar's cells.

A day (in the connection's time zone) shows the worst of its expected files (missing, then
late, overdue, pending, received) and the files nobody expected (a second file in a slot's
window, or any file when the connection expects nothing special on that day).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from connectbatch.delivery import cadence
from connectbatch.delivery.cadence import SlotState
from connectbatch.models import Connection
from connectbatch.store.delivery import Arrival

_WORST = (SlotState.MISSING, SlotState.LATE, SlotState.OVERDUE, SlotState.PENDING, SlotState.RECEIVED)


@dataclass(frozen=True)
class Day:
    day: dt.date
    expected: int  # files due that day
    received: int  # files that arrived that day
    state: str  # a SlotState value, "extra", "received" (nothing expected) or "" (quiet day)
    extra: int = 0  # files nobody expected


def days(
    c: Connection, arrivals: list[Arrival], first: dt.date, last: dt.date, now: dt.datetime
) -> list[Day]:
    """One Day per date in [first, last] for connection `c` (its arrivals, any order)."""
    zone = zoneinfo.ZoneInfo(c.timezone)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    mine = sorted(a.at for a in arrivals if a.connection_id == c.id)
    received: dict[dt.date, int] = {}
    for at in mine:
        if start <= at < end:
            received[at.astimezone(zone).date()] = received.get(at.astimezone(zone).date(), 0) + 1
    states: dict[dt.date, list[SlotState]] = {}
    extra: dict[dt.date, int] = {}
    if c.expect:
        grace = dt.timedelta(minutes=c.expect_grace_minutes)
        taken: set[dt.datetime] = set()
        for slot in cadence.slots(c.expect, c.timezone, grace, start, end - dt.timedelta(microseconds=1)):
            states.setdefault(slot.deadline.astimezone(zone).date(), []).append(
                cadence.state(slot, mine, now)
            )
            first_in = next((a for a in mine if slot.start < a <= slot.end and a <= now), None)
            if first_in is not None:
                taken.add(first_in)
        for at in mine:  # every file that was not some slot's expected file
            if start <= at < end and at not in taken:
                d = at.astimezone(zone).date()
                extra[d] = extra.get(d, 0) + 1
    out = []
    for i in range((last - first).days + 1):
        d = first + dt.timedelta(days=i)
        got = received.get(d, 0)
        if d in states:
            worst = next(s for s in _WORST if s in states[d])
            out.append(Day(d, len(states[d]), got, str(worst), extra.get(d, 0)))
        elif got:
            out.append(
                Day(d, 0, got, "extra" if c.expect else "received", extra.get(d, 0) if c.expect else 0)
            )
        else:
            out.append(Day(d, 0, 0, ""))
    return out
