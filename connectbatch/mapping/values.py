"""What a column's sample values look like: the tie-breaker when names are not enough.

Each profile is a share (0..1) of the non-empty sample cells that fit a shape. Shapes are
deliberately coarse: they only have to tell a phone number from a timestamp from a
duration, not validate anything (the parser does that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from connectbatch.schemas import Column, Kind

_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{6,18}[0-9]")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}.*)?|[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}.*"
)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DURATION = re.compile(r"[0-9]+(\.[0-9]+)?|[0-9]+:[0-9]{2}(:[0-9]{2})?")
_DECIMAL = re.compile(r"[+-]?\$?[0-9]{1,3}(,?[0-9]{3})*(\.[0-9]+)?")
_URL = re.compile(r"https?://\S+")
_CODE2 = re.compile(r"[A-Za-z]{2}")
_CODE3 = re.compile(r"[A-Za-z]{3}")

PHONE_COLUMNS = ("CallerId", "CalledPhoneNumber")


@dataclass(frozen=True)
class Profile:
    """Shares of the sample cells that look like each shape, and the integers' median."""

    filled: int
    phone: float = 0.0
    e164: float = 0.0
    timestamp: float = 0.0
    integer: float = 0.0
    duration: float = 0.0
    decimal: float = 0.0
    url: float = 0.0
    code2: float = 0.0
    code3: float = 0.0
    median: float | None = None  # of the cells that read as numbers
    cells: tuple[str, ...] = ()  # the non-empty sample cells, trimmed

    def describe(self) -> str:
        """The dominant shape, for a reason line ('E.164 numbers', 'ISO timestamps')."""
        if not self.filled:
            return "no values in the sample"
        for share, label in (
            (self.e164, "E.164 phone numbers"),
            (self.timestamp, "timestamps"),
            (self.url, "URLs"),
            (self.phone, "phone numbers"),
            (self.integer, "integers"),
            (self.duration, "durations"),
            (self.decimal, "amounts"),
        ):
            if share >= 0.8:
                return label
        return "text"


def profile(values: Sequence[str]) -> Profile:
    cells = [v.strip() for v in values if v and v.strip()]
    n = len(cells)
    if not n:
        return Profile(0)

    def share(rx: re.Pattern[str]) -> float:
        return sum(1 for c in cells if rx.fullmatch(c)) / n

    numbers = sorted(float(c) for c in cells if _DURATION.fullmatch(c) and ":" not in c)
    return Profile(
        n,
        phone=share(_PHONE),
        e164=share(_E164),
        timestamp=share(_TIMESTAMP),
        integer=share(_INTEGER),
        duration=share(_DURATION),
        decimal=share(_DECIMAL),
        url=share(_URL),
        code2=share(_CODE2),
        code3=share(_CODE3),
        median=numbers[len(numbers) // 2] if numbers else None,
        cells=tuple(cells),
    )


def fit(column: Column, p: Profile) -> float | None:
    """How well the values fit our column: 1.0 fits, 0.0 contradicts, None no evidence."""
    if not p.filled:
        return None
    if column.name in PHONE_COLUMNS:
        return max(p.phone, p.e164)
    if column.kind is Kind.TIMESTAMP:
        return p.timestamp
    if column.kind is Kind.SECONDS:
        return p.duration * (0.0 if p.timestamp > 0.5 or (p.phone > 0.5 and (p.median or 0) > 1e6) else 1.0)
    if column.kind is Kind.INTEGER:
        return p.integer
    if column.kind is Kind.DECIMAL:
        return p.decimal
    if column.kind is Kind.COUNTRY:
        return p.code2
    if column.kind is Kind.CURRENCY:
        return p.code3
    if column.kind is Kind.ENUM and column.allowed:
        allowed = {a.lower() for a in column.allowed}
        return sum(1 for v in p.cells if v.lower() in allowed) / p.filled
    if column.name == "CallRecording":
        return p.url
    return None
