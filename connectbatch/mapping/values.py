"""What a column's sample values look like: the tie-breaker when names are not enough.

Each profile is a share (0..1) of the non-empty sample cells that fit a shape. Whether a
cell is a timestamp, a duration, an amount, an integer, a country or a currency code is
asked of the parser's own converters (`parser.refcore.convert`, the reference core the
compiled one is held equal to), never of a second set of patterns: a suggestion must not
promise that a column fits when the ingest would reject every cell of it. Phone numbers
and URLs are text to the parser, so their shapes stay coarse patterns that only have to
tell a phone number from a timestamp.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from connectbatch.parser import refcore
from connectbatch.parser.plan import CoreKind, Slot
from connectbatch.parser.refvalues import enum_form
from connectbatch.schemas import Column, Kind

# "(555) 123-4567" as US exports write it: the parser takes any text as a phone number.
_PHONE = re.compile(r"\+?\(?[0-9][0-9 ().-]{6,18}[0-9]")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
# Not a timestamp to the parser (ISO 8601 only): recognised only to tell the analyst why a
# date column does not fit and what the partner must change.
_US_DATE = re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}(?:[ T].*)?")
_URL = re.compile(r"https?://\S+")

# One slot per kind the parser types, read as an optional column without a default.
_SLOTS = {kind: Slot(kind.name, kind, False, None) for kind in (
    CoreKind.TIMESTAMP, CoreKind.INTEGER, CoreKind.SECONDS, CoreKind.DECIMAL,
    CoreKind.COUNTRY, CoreKind.CURRENCY,
)}  # fmt: skip


def parses_as(kind: CoreKind, cell: str) -> object | None:
    """The value the parser makes of a (non-empty) cell in a column of `kind`, or None
    when it would reject the cell."""
    try:
        return refcore.convert(cell.encode("utf-8"), _SLOTS[kind])
    except refcore.CellRejected:
        return None


PHONE_COLUMNS = ("CallerId", "CalledPhoneNumber")
US_DATES = (
    "US-style dates (M/D/YYYY), which the parser refuses: "
    "the partner must export ISO 8601 such as 2026-03-01T14:05:09Z"
)


@dataclass(frozen=True)
class Profile:
    """Shares of the sample cells that look like each shape, and the integers' median."""

    filled: int
    rows: int = 0  # sample rows, with or without a value here
    phone: float = 0.0
    e164: float = 0.0
    timestamp: float = 0.0
    integer: float = 0.0
    duration: float = 0.0
    decimal: float = 0.0
    url: float = 0.0
    country: float = 0.0
    currency: float = 0.0
    us_date: float = 0.0  # M/D/YYYY dates, which the parser refuses
    median: float | None = None  # of the cells that read as durations, in seconds
    cells: tuple[str, ...] = ()  # the non-empty sample cells, trimmed

    @property
    def empty(self) -> bool:
        """The sample has rows but none with a value here: an empty required column
        makes the ingest reject every row."""
        return self.rows > 0 and not self.filled

    def describe(self, column: Column | None = None) -> str:
        """The shape of the values, for a reason line ('E.164 phone numbers', 'amounts'):
        the one that fits `column` when they fit it ('49.99' is an amount for SaleAmount,
        a duration for CallDuration), else the dominant one."""
        if not self.filled:
            return "no values in the sample"
        if column is not None and (fit(column, self) or 0.0) >= 0.8:
            if column.name in PHONE_COLUMNS:
                return "E.164 phone numbers" if self.e164 >= 0.8 else "phone numbers"
            if column.kind in _KIND_LABELS:
                return _KIND_LABELS[column.kind]
        for share, label in (
            (self.e164, "E.164 phone numbers"),
            (self.timestamp, "timestamps"),
            (self.us_date, US_DATES),
            (self.url, "URLs"),
            (self.phone, "phone numbers"),
            (self.integer, "integers"),
            (self.decimal, "amounts"),  # '49.99' is also a duration; as often an amount
            (self.duration, "durations"),  # '0:03:05'
        ):
            if share >= 0.8:
                return label
        return "text"


_KIND_LABELS = {
    Kind.TIMESTAMP: "timestamps", Kind.SECONDS: "durations", Kind.INTEGER: "integers",
    Kind.DECIMAL: "amounts", Kind.COUNTRY: "country codes", Kind.CURRENCY: "currency codes",
    Kind.ENUM: "values of its list",
}  # fmt: skip


def wanted(column: Column) -> str:
    """What a column's values must be, for a reason line that says they are not."""
    if column.name in PHONE_COLUMNS:
        return "phone numbers"
    if column.kind is Kind.TIMESTAMP:
        return "ISO 8601 timestamps such as 2026-03-01T14:05:09Z"
    return _KIND_LABELS.get(column.kind, "values the column takes")


def profile(values: Sequence[str]) -> Profile:
    cells = [v.strip() for v in values if v and v.strip()]
    n = len(cells)
    if not n:
        return Profile(0, len(values))

    def share(rx: re.Pattern[str]) -> float:
        return sum(1 for c in cells if rx.fullmatch(c)) / n

    def parsed(kind: CoreKind) -> list[object]:
        return [v for v in (parses_as(kind, c) for c in cells) if v is not None]

    durations = sorted(v for v in parsed(CoreKind.SECONDS) if isinstance(v, int))
    return Profile(
        n,
        len(values),
        phone=share(_PHONE),
        e164=share(_E164),
        timestamp=len(parsed(CoreKind.TIMESTAMP)) / n,
        # every integer column is an identifier or a count (schemas: never negative)
        integer=sum(1 for v in parsed(CoreKind.INTEGER) if isinstance(v, int) and v >= 0) / n,
        duration=len(durations) / n,
        decimal=len(parsed(CoreKind.DECIMAL)) / n,
        url=share(_URL),
        country=len(parsed(CoreKind.COUNTRY)) / n,
        currency=len(parsed(CoreKind.CURRENCY)) / n,
        us_date=share(_US_DATE),
        median=float(durations[len(durations) // 2]) if durations else None,
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
        return p.country
    if column.kind is Kind.CURRENCY:
        return p.currency
    if column.kind is Kind.ENUM and column.allowed:  # as the parser matches them (in_stock is InStock)
        allowed = {enum_form(a.encode()) for a in column.allowed}
        return sum(1 for v in p.cells if enum_form(v.encode()) in allowed) / p.filled
    if column.name == "CallRecording":
        return p.url
    return None
