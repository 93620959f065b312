"""Builders of small, valid input files for the integration tests.

Validation rejects call conversions dated in the future or older than the accepted window
(90 days by default), so every file here is dated relative to *now*: a fixed date would make
the tests fail on their own some months later.

    data = call_csv(40)                                   # 40 good rows, cs-0000 ... cs-0039
    data = call_csv(40, prefix="b")                       # other CallSessionIds
    data = call_csv(40, overrides={3: {"SaleAmount": "-5"}})  # row 3 (0-based) changed
    data = modifications_csv([("A-000001", "20.00", "price corrected"), ...])
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence

# The required call-conversion columns plus a few optional ones a real export carries.
CALL_COLUMNS: tuple[str, ...] = (
    "CampaignId",
    "MediaId",
    "EventDate",
    "ActionTrackerId",
    "CallProvider",
    "CallSessionId",
    "CallerId",
    "CalledPhoneNumber",
    "CallDuration",
    "TalkDuration",
    "CallStatus",
    "SaleAmount",
    "City",
)

MODIFICATION_COLUMNS: tuple[str, ...] = ("ActionId", "Amount", "Reason")


def fresh_date(days_ago: float = 1.0, now: dt.datetime | None = None) -> dt.datetime:
    """A UTC time `days_ago` before now, whole seconds (what a file carries)."""
    now = now or dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(days=days_ago)).replace(microsecond=0)


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def call_row(i: int, *, prefix: str = "cs", event_date: dt.datetime | None = None) -> dict[str, str]:
    """Data row `i`: valid, with CallSessionId `<prefix>-<i:04d>` and SaleAmount 10.00 + i."""
    when = event_date or fresh_date(1 + (i % 5) / 10)
    return {
        "CampaignId": str(1000 + i % 3),
        "MediaId": "98765",
        "EventDate": iso(when),
        "ActionTrackerId": "20001",
        "CallProvider": "Invoca",
        "CallSessionId": f"{prefix}-{i:04d}",
        "CallerId": f"+1555{i:07d}",
        "CalledPhoneNumber": "+18005550100",
        "CallDuration": str(120 + i),
        "TalkDuration": str(60 + i),
        "CallStatus": "ANSWER",
        "SaleAmount": f"{10 + i}.00",
        "City": "Austin, TX" if i % 4 == 0 else "Boston",  # a quoted field now and then
    }


def call_rows(
    n: int,
    *,
    prefix: str = "cs",
    event_date: dt.datetime | None = None,
    overrides: Mapping[int, Mapping[str, str]] | None = None,
) -> list[dict[str, str]]:
    rows = [call_row(i, prefix=prefix, event_date=event_date) for i in range(n)]
    for i, changes in (overrides or {}).items():
        rows[i].update(changes)
    return rows


def to_csv(
    rows: Iterable[Mapping[str, str]],
    columns: Sequence[str],
    *,
    newline: str = "\r\n",
) -> bytes:
    """RFC 4180 CSV bytes (UTF-8) with `columns` as the header; cells a row lacks are empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue().encode("utf-8")


def call_csv(
    n: int,
    *,
    prefix: str = "cs",
    event_date: dt.datetime | None = None,
    overrides: Mapping[int, Mapping[str, str]] | None = None,
    columns: Sequence[str] = CALL_COLUMNS,
    newline: str = "\r\n",
) -> bytes:
    """A call-conversion file of `n` valid rows (data row i is on physical line i + 2)."""
    return to_csv(
        call_rows(n, prefix=prefix, event_date=event_date, overrides=overrides),
        columns,
        newline=newline,
    )


def modifications_csv(rows: Iterable[tuple[str, str, str]]) -> bytes:
    """An action-modifications file: (ActionId, Amount, Reason) per row."""
    return to_csv((dict(zip(MODIFICATION_COLUMNS, r, strict=True)) for r in rows), MODIFICATION_COLUMNS)
