"""Lock-aware triage: what will lock in the next N days and still needs a person.

An action locks `lock_days` after its event and nothing changes it afterwards, so a reviewer's
queue is really a list of deadlines. Four kinds of item have one (each holds the earliest lock
time of what it is about):

* quarantined batch: a held run awaiting release or discard. Its rows are not actions yet;
  they lock at EventDate + the connection's lock_days, so the batch's deadline is the earliest
  of those (a held action-modifications batch: the earliest lock time of the pending actions
  it names). A batch already past its deadline stays listed: released now, its late actions
  are created LOCKED, which a reviewer should know before clicking.
* reject spike: a run whose reject rate is well above its connection's usual (more than
  SPIKE_FACTOR times the median of the connection's other runs, and above SPIKE_FLOOR; with
  the default CONNECTBATCH_MAX_REJECT_RATE of 5 % such a run is quarantined instead, so
  spikes show where that limit is raised), not under review. The
  rejected rows are records the partner must correct before they lock; their event dates were
  not stored, so the deadline is the earliest lock time of the actions the same run created
  (the file's rows share their dates), else the run's start + lock_days. A later completed run
  of the connection that is not a spike itself resolves it (the corrections arrived).
* refused change request ("pending reversal"): there is no approval flow for reversals, so
  a partner's change that did not happen is the thing to chase: an action-modifications row
  refused (a reject naming the ActionId, e.g. a negative amount) whose action, of the same
  partner, is still PENDING or MODIFIED, will lock within the window and was not changed by
  anyone since. Rows the parser itself refused are not traceable to an action (the rejects
  table keeps the failing cell only) and are not listed.
* last file failed: a connection whose latest run failed; its changeable (PENDING or MODIFIED)
  actions locking within the window, while the partner's corrections cannot arrive. When the
  failed connection carries action modifications, it is the changeable actions of every
  connection of its partner. A later run that does not fail resolves it. The next step is a
  retry when the run failed on our side (interrupted, an internal error, a server that could
  not be reached); when its file was refused for its content (a wrong header, not a CSV) a
  retry reads the same bytes and fails the same way: the partner must fix the file and send
  it again (`TriageItem.resend`).

Items are grouped by partner and ordered by time left (the group with the most urgent item
first). This module holds the records and the pure rules; store/triage.py reads the rows and
services/triage.py puts them together with the services' clock.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectbatch.models import FileState

DEFAULT_DAYS = 7
MAX_DAYS = 366
SPIKE_FACTOR = 3.0  # a spike: above this many times the connection's median reject rate
SPIKE_FLOOR = 0.05  # ... and above 5 % of the run's rows


class TriageKind(StrEnum):
    QUARANTINED = "quarantined"
    REJECT_SPIKE = "reject_spike"
    REFUSED_CHANGE = "refused_change"
    FAILED_CONNECTION = "failed_connection"


KIND_LABELS = {
    TriageKind.QUARANTINED: "Quarantined batch",
    TriageKind.REJECT_SPIKE: "Reject spike",
    TriageKind.REFUSED_CHANGE: "Refused change request",
    TriageKind.FAILED_CONNECTION: "Last file failed",
}
# Same deadline: the item a person can settle at once first.
_KIND_ORDER = {kind: i for i, kind in enumerate(KIND_LABELS)}


@dataclass(frozen=True)
class TriageItem:
    """One thing to do before `deadline`: its kind, whose it is and what it holds."""

    kind: TriageKind
    deadline: dt.datetime  # the earliest lock time of what the item holds
    connection_id: int
    connection: str
    partner_id: int | None
    partner: str | None
    run_id: int | None  # the held, spiking, refusing or failed run
    count: int  # rows held / rows rejected / actions locking (1 for a refused change)
    detail: str  # partner-controlled parts are raw: escape them where they are shown
    action_id: int | None = None  # the action a refused change names
    resend: bool = False  # a failed run's file was refused for its content: only the partner can fix it

    def time_left(self, now: dt.datetime) -> dt.timedelta:
        return self.deadline - now

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "kind": str(self.kind), "label": self.label, "deadline": self.deadline.isoformat(),
            "seconds_left": int(self.time_left(now).total_seconds()),
            "time_left": time_left_text(self.deadline, now), "partner_id": self.partner_id,
            "partner": self.partner, "connection_id": self.connection_id,
            "connection": self.connection, "run_id": self.run_id, "action_id": self.action_id,
            "count": self.count, "detail": self.detail, "resend": self.resend,
        }  # fmt: skip


@dataclass(frozen=True)
class PartnerGroup:
    partner_id: int | None
    partner: str
    items: list[TriageItem]

    @property
    def deadline(self) -> dt.datetime:
        return self.items[0].deadline


@dataclass(frozen=True)
class Triage:
    """Everything locking before `now + days` that needs a person, grouped by partner."""

    now: dt.datetime
    days: int
    groups: list[PartnerGroup] = field(default_factory=list)

    @property
    def until(self) -> dt.datetime:
        return self.now + dt.timedelta(days=self.days)

    @property
    def items(self) -> list[TriageItem]:
        return [item for group in self.groups for item in group.items]

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "days": self.days,
            "until": self.until.isoformat(),
            "partners": [
                {
                    "partner_id": g.partner_id,
                    "partner": g.partner,
                    "items": [i.as_dict(self.now) for i in g.items],
                }
                for g in self.groups
            ],
        }


def _item_order(item: TriageItem) -> tuple[dt.datetime, int, str, int, int]:
    return item.deadline, _KIND_ORDER[item.kind], item.connection, item.run_id or 0, item.action_id or 0


def group(items: Iterable[TriageItem], now: dt.datetime, days: int) -> Triage:
    """Items by partner, each group by time left, the group with the most urgent item first."""
    by_partner: dict[int | None, list[TriageItem]] = {}
    for item in items:
        by_partner.setdefault(item.partner_id, []).append(item)
    groups = [
        PartnerGroup(pid, found[0].partner or "(no partner)", sorted(found, key=_item_order))
        for pid, found in by_partner.items()
    ]
    groups.sort(key=lambda g: (g.deadline, g.partner.casefold(), g.partner_id or 0))
    return Triage(now, days, groups)


def time_left_text(deadline: dt.datetime, now: dt.datetime) -> str:
    """'3 d 4 h', '5 h 20 min', '12 min', or 'locked 2 d ago' once the deadline has passed."""
    left = deadline - now
    if left <= dt.timedelta(0):
        return f"past its lock time by {_span(-left)}"
    return _span(left)


def _span(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


# ------------------------------------------------------------------ failed connections

# File states of a failed run that a retry can mend: our side failed (an internal error, an
# interrupted process; a file still under way is marked failed when its process is found dead).
_OUR_SIDE = frozenset({FileState.FAILED, FileState.FETCHED, FileState.PARSED, FileState.VALIDATED})


def refused_for_content(states: Iterable[FileState]) -> bool:
    """Whether a failed run failed only because the partner's file was refused as a whole
    (`FileState.REJECTED`: a wrong header, not a CSV): a retry parses the same bytes and is
    refused again, so the partner must fix the file and send it again. A run with a file that
    failed on our side, or with no file (a pull that could not reach the server), is retried."""
    found = set(states)
    return FileState.REJECTED in found and not found & _OUR_SIDE


# ------------------------------------------------------------------ reject spikes


@dataclass(frozen=True)
class RatedRun:
    """A run with rows, as the spike rule sees it (store/triage.rated_runs)."""

    run_id: int
    connection_id: int
    completed: bool
    reviewed: bool  # held for review, released or discarded: a person has it
    rows: int
    rejected: int

    @property
    def rate(self) -> float:
        return self.rejected / self.rows if self.rows else 0.0


def spike_limit(others: Sequence[float]) -> float:
    """The reject rate above which a run is a spike, given the connection's other runs."""
    usual = statistics.median(others) if others else 0.0
    return max(SPIKE_FACTOR * usual, SPIKE_FLOOR)


def unresolved_spikes(runs: Sequence[RatedRun]) -> list[RatedRun]:
    """The spiking runs no later completed, ordinary run of their connection has answered.
    A reviewed run is left out: held, it is an item of its own; released or discarded, a
    person has decided on it."""
    by_connection: dict[int, list[RatedRun]] = {}
    for run in sorted(runs, key=lambda r: r.run_id):
        by_connection.setdefault(run.connection_id, []).append(run)
    found = []
    for history in by_connection.values():
        for i, run in enumerate(history):
            limit = spike_limit([o.rate for o in history if o.run_id != run.run_id])
            if run.reviewed or run.rate <= limit:
                continue
            if not any(later.completed and later.rate <= limit for later in history[i + 1 :]):
                found.append(run)
    return found


# ------------------------------------------------------------------ held batches


def held_first_event(paths: Iterable[Path], column: str) -> dt.datetime | None:
    """The earliest value of `column` (EventDate) over the held Parquet files, None if none."""
    first: dt.datetime | None = None
    for path in paths:
        if not path.exists():
            continue
        table = pq.read_table(path, columns=[column])
        value = pc.min(table.column(column)).as_py()
        if isinstance(value, dt.datetime):
            value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            first = value if first is None or value < first else first
    return first


def held_values(paths: Iterable[Path], column: str) -> list[str]:
    """Every non-empty value of `column` (ActionId) over the held Parquet files."""
    out: list[str] = []
    for path in paths:
        if path.exists():
            out += [str(v) for v in pq.read_table(path, columns=[column]).column(column).to_pylist() if v]
    return out


@dataclass(frozen=True)
class HeldBatch:
    """A quarantined run as triage needs it: where its held rows are and how they lock."""

    run_id: int
    connection_id: int
    connection: str
    data_type: str
    lock_days: int
    partner_id: int | None
    partner: str | None
    file_ids: tuple[int, ...]  # its quarantined files (one Parquet file each)
    rows: int  # rows held back
