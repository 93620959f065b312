"""What a connection usually receives, learned from its files: a suggested cadence (daily,
weekdays or weekly, by the usual time) with a confidence, and the usual rows per file.

Shown as a suggestion only: a person sets the expectation (`connection edit N --expect`),
so a partner's bad fortnight never becomes the norm by itself.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import zoneinfo
from collections import Counter
from dataclasses import dataclass

from connectbatch.delivery.cadence import DAY_NAMES

LEARN_FROM = 30  # the last N arrivals
MIN_DAYS = 3  # fewer days with a file: no suggestion
FULL_CONFIDENCE_DAYS = 10  # days with a file needed for full confidence


@dataclass(frozen=True)
class Suggestion:
    expect: str  # e.g. "daily by 06:00"
    confidence: float  # 0-1: how well the files fit the pattern, times how many there are
    days_seen: int  # distinct days with a file
    reason: str


def _score(seen: set[dt.date], expected: set[dt.date]) -> float:
    """Coverage (expected days that had a file) times precision (file days that were expected)."""
    if not expected or not seen:
        return 0.0
    hits = len(seen & expected)
    return (hits / len(expected)) * (hits / len(seen))


def _deadline(times: list[dt.time]) -> str:
    """The usual latest arrival: the 90th percentile of the times of day, rounded up to the
    next quarter hour (23:59 at most)."""
    minutes = sorted(t.hour * 60 + t.minute + (1 if t.second or t.microsecond else 0) for t in times)
    at = minutes[min(len(minutes) - 1, math.ceil(0.9 * len(minutes)) - 1)]
    at = min(23 * 60 + 59, -(-at // 15) * 15)
    return f"{at // 60:02d}:{at % 60:02d}"


def suggest(arrivals: list[dt.datetime], timezone: str) -> Suggestion | None:
    """The cadence that fits the last `LEARN_FROM` arrivals best, or None with too few."""
    zone = zoneinfo.ZoneInfo(timezone)
    local = sorted(a.astimezone(zone) for a in arrivals)[-LEARN_FROM:]
    firsts: dict[dt.date, dt.time] = {}
    for a in local:
        firsts.setdefault(a.date(), a.time())
    seen = set(firsts)
    if len(seen) < MIN_DAYS:
        return None
    first, last = min(seen), max(seen)
    span = {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}
    weekday, _ = Counter(d.weekday() for d in seen).most_common(1)[0]
    name = DAY_NAMES[(weekday + 1) % 7]  # date.weekday(): 0 is Monday; cron's names start on Sunday
    candidates = [
        ("daily", span),
        ("weekdays", {d for d in span if d.weekday() < 5}),
        (f"weekly on {name}", {d for d in span if d.weekday() == weekday}),
    ]
    scored = [(round(_score(seen, days), 4), -i, words, days) for i, (words, days) in enumerate(candidates)]
    score, _, words, days = max(scored)
    if score == 0:
        return None
    hits = seen & days
    by = _deadline([firsts[d] for d in hits])
    confidence = round(score * min(1.0, len(hits) / FULL_CONFIDENCE_DAYS), 2)
    reason = (
        f"{len(hits)} of {len(days)} expected days in {first:%Y-%m-%d}..{last:%Y-%m-%d} had a file, "
        f"{len(seen) - len(hits)} other days had one; 9 in 10 came by {by} {timezone}"
    )
    return Suggestion(expect=f"{words} by {by}", confidence=confidence, days_seen=len(seen), reason=reason)


def usual_rows(rows: list[int]) -> int | None:
    """The median rows per file (None without 3 files to go by)."""
    return int(statistics.median(rows)) if len(rows) >= 3 else None
