"""Typed inputs and results of the partner screens: the call-data explorer and the
pending-actions list.

The store answers with these (small lists and Arrow tables, never all rows); the pages
build a `CallFilter` from their widgets and show what comes back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import pyarrow as pa

from connectbatch.models import Action
from connectbatch.pipeline import lifecycle

DurationColumn = Literal["CallDuration", "TalkDuration"]

# Readable duration buckets (lower bounds in seconds) rather than equal-width bins: a
# partner manager asks "how many calls were under a minute", not "in bin 3 of 40".
DURATION_BUCKETS: tuple[tuple[int, str], ...] = (
    (0, "0–29 s"),
    (30, "30–59 s"),
    (60, "1–2 min"),
    (120, "2–5 min"),
    (300, "5–10 min"),
    (600, "10–20 min"),
    (1200, "20–30 min"),
    (1800, "30 min +"),
)


@dataclass(frozen=True)
class CallFilter:
    """What the explorer shows: empty tuples and None mean "any"; `end` is inclusive."""

    start: dt.date | None = None
    end: dt.date | None = None
    campaigns: tuple[int, ...] = ()
    media_ids: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    partners: tuple[int, ...] = ()  # partner ids: calls of connections that belong to one


@dataclass(frozen=True)
class CallFilterOptions:
    """Values the filters offer, from DISTINCT queries over the loaded calls. Campaigns and
    media partners are the busiest `option_limit` ones (any other id can be typed)."""

    campaigns: list[int] = field(default_factory=list)
    media_ids: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    option_limit: int = 1000
    # (id, name) of the partners whose connections delivered calls, by name
    partners: list[tuple[int, str]] = field(default_factory=list)
    # the partner name of each MediaId a partner has: labels like "Leadwave Media (98765)"
    media_names: dict[int, str] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return self.first_day is None

    def media_label(self, media_id: int) -> str:
        """The label of a MediaId: "Leadwave Media (98765)" where a partner has it, the number otherwise
        (partner text: escape it where it is shown)."""
        name = self.media_names.get(int(media_id))
        return f"{name} ({media_id})" if name else str(media_id)


@dataclass(frozen=True)
class CallKpis:
    calls: int = 0  # distinct calls: a call's events (the call, its conversions) are one call
    answered: int = 0
    talk_seconds: int = 0
    sales: int = 0
    sale_amount: Decimal = Decimal("0.00")
    rows: int = 0  # the rows: one an event

    @property
    def answered_rate(self) -> float:
        return self.answered / self.calls if self.calls else 0.0

    @property
    def average_talk_seconds(self) -> float:
        return self.talk_seconds / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class CallSummary:
    """Everything above the explorer's table, for one filter.

    per_day: day (date), status, calls. top_media: media_id, calls, answered, sale_amount,
    media_partner ("Name (id)" where a partner has the MediaId, the id otherwise).
    durations: bucket (label), calls — every bucket, in order, zero counts included.
    """

    kpis: CallKpis
    per_day: pa.Table
    top_media: pa.Table
    durations: pa.Table


@dataclass(frozen=True)
class ActionPage:
    """One page of the pending-actions list, how many match in all, and the time it was
    read (what "locked" and "days to lock" are measured against)."""

    actions: list[Action]
    total: int
    now: dt.datetime

    def is_locked(self, action: Action) -> bool:
        return lifecycle.is_locked(action, self.now)

    def days_to_lock(self, action: Action) -> float:
        """Days until the action locks; 0 once it is locked."""
        if self.is_locked(action):
            return 0.0
        return (action.lock_at - self.now).total_seconds() / 86400


@dataclass(frozen=True)
class ActionOutcome:
    """What happened to one action of a change applied to several."""

    action_id: int
    ok: bool
    message: str
    action: Action | None = None

    @property
    def label(self) -> str:
        return f"A-{self.action_id:06d}"
