"""Raise and clear delivery alerts for one connection at one moment (the engine calls this
every few minutes on the pipeline's clock; a test calls it with its own clock).

- late: a slot is past its deadline + grace and no file came yet (cleared when one arrives;
  it becomes *missing* when the slot's window closes without one),
- missing: a slot's window closed without a file (cleared when a file arrives),
- volume_drift: a file's rows are outside ±`volume_tolerance` % of the median of the files
  before it (cleared by the next file back in range),
- reject_spike: a file's reject rate is well above the usual (cleared likewise),
- file_rejected: the latest file was refused as a whole for its content (a wrong header, not
  a CSV): the partner must fix it and send it again (cleared by the next file that loads).

Volume and rejects are judged on files whose rows were read (`Arrival.reading`): a refused,
failed or discarded file is no reading and no part of the usual. Only the newest file is
judged, never the files before it: a tolerance set today (or a check after a pause) must not
raise a burst of alerts for history; a file followed by another before the next check counts
through the usual only.

Each alert is raised once: its `dedupe_key` names the slot or the file, so a check that runs
again, or after a restart, finds it and does nothing. Raising and clearing each add a line to
the connection's history (`store.events`) in the same transaction; the owner is e-mailed once
the alert is stored (a failed mail leaves `notified` false and is logged, never raised).
"""

from __future__ import annotations

import datetime as dt
import statistics
import zoneinfo
from dataclasses import dataclass, field

import duckdb

from connectbatch.delivery import cadence
from connectbatch.delivery.cadence import SlotState
from connectbatch.escaping import visible
from connectbatch.models import Connection, Direction, FileState
from connectbatch.store import delivery as delivery_store
from connectbatch.store import events as event_store
from connectbatch.store.delivery import Alert, Arrival

LATE, MISSING, VOLUME_DRIFT, REJECT_SPIKE = "late", "missing", "volume_drift", "reject_spike"
FILE_REJECTED = "file_rejected"
KIND_LABELS = {
    LATE: "File late",
    MISSING: "File missing",
    VOLUME_DRIFT: "Volume drift",
    REJECT_SPIKE: "Reject spike",
    FILE_REJECTED: "File rejected",
}
# History lines (connection_events.kind)
EVENT_RAISED, EVENT_CLEARED = "delivery_alert", "delivery_alert_cleared"

LOOKBACK = dt.timedelta(days=45)
USUAL_FROM = 20  # files before the one judged that make "the usual"
MIN_USUAL = 3  # fewer: no volume or reject judgement
REJECT_SPIKE_POINTS = 0.10  # a reject rate at least 10 points above the usual
REJECT_SPIKE_FACTOR = 2.0  # and at least twice it


@dataclass
class Outcome:
    raised: list[Alert] = field(default_factory=list)
    cleared: list[Alert] = field(default_factory=list)


def monitored(c: Connection) -> bool:
    """Inbound connections with an expected cadence or a volume tolerance are watched."""
    return c.direction is Direction.INBOUND and (bool(c.expect) or c.volume_tolerance is not None)


def check(con: duckdb.DuckDBPyConnection, c: Connection, now: dt.datetime) -> Outcome:
    """Raise what is wrong now and clear what came right (inside the caller's transaction)."""
    out = Outcome()
    if not monitored(c):
        return out
    arrivals = delivery_store.arrivals(con, c.id, now - LOOKBACK, now)
    _clear_on_arrival(con, c, arrivals, now, out)
    if c.expect:
        _slots(con, c, arrivals, now, out)
    if arrivals and arrivals[-1].state is FileState.REJECTED:
        _refused(con, c, arrivals[-1], now, out)
    readings = [a for a in arrivals if a.reading]
    if not readings:
        return out
    latest, usual = readings[-1], readings[:-1][-USUAL_FROM:]  # the newest file only: no burst
    _clear_older(con, c, FILE_REJECTED, latest, now, f"file {visible(latest.name)} loaded", out)
    if len(usual) >= MIN_USUAL:
        if c.volume_tolerance is not None:
            _volume(con, c, latest, usual, now, out)
        _rejects(con, c, latest, usual, now, out)
    return out


def _raise(
    con: duckdb.DuckDBPyConnection,
    c: Connection,
    kind: str,
    message: str,
    now: dt.datetime,
    key: str,
    out: Outcome,
) -> None:
    alert = delivery_store.raise_alert(con, c.id, kind, message, now, key)
    if alert is None:
        return
    event_store.record(
        con, c.id, EVENT_RAISED, f"{KIND_LABELS[kind]}: {message}", now, dedupe_key=f"alert:{alert.id}"
    )
    out.raised.append(alert)


def _clear(con: duckdb.DuckDBPyConnection, alert: Alert, now: dt.datetime, note: str, out: Outcome) -> None:
    cleared = delivery_store.clear(con, alert.id, now, note)
    event_store.record(
        con, alert.connection_id, EVENT_CLEARED, f"{KIND_LABELS[alert.kind]} cleared: {note}", now,
        dedupe_key=f"alert-cleared:{alert.id}",
    )  # fmt: skip
    out.cleared.append(cleared)


def _when(at: dt.datetime, c: Connection) -> str:
    return f"{at.astimezone(zoneinfo.ZoneInfo(c.timezone)):%a %Y-%m-%d %H:%M} {c.timezone}"


def _clear_on_arrival(
    con: duckdb.DuckDBPyConnection, c: Connection, arrivals: list[Arrival], now: dt.datetime, out: Outcome
) -> None:
    for alert in delivery_store.open_alerts(con, c.id):
        if alert.kind not in (LATE, MISSING):
            continue
        came = next((a for a in arrivals if a.at > alert.raised_at), None)
        if came is not None:
            _clear(con, alert, now, f"file {visible(came.name)} arrived {_when(came.at, c)}", out)


def _slots(
    con: duckdb.DuckDBPyConnection, c: Connection, arrivals: list[Arrival], now: dt.datetime, out: Outcome
) -> None:
    grace = dt.timedelta(minutes=c.expect_grace_minutes)
    times = [a.at for a in arrivals]
    recent = cadence.slots(c.expect or "", c.timezone, grace, now - dt.timedelta(days=35), now)
    if c.created_at is not None:  # nothing was expected of a connection before it existed
        recent = [s for s in recent if s.deadline > c.created_at]
    closed = [s for s in recent if s.end <= now][-1:]  # the latest closed slot only: no flood
    current = [s for s in recent if s.end > now]
    for slot in closed + current:
        state = cadence.state(slot, times, now)
        stamp = f"{slot.deadline:%Y-%m-%dT%H:%MZ}"
        expected = (
            f"the file expected by {_when(slot.deadline, c)} ({c.expect}, grace {c.expect_grace_minutes} min)"
        )
        if state is SlotState.OVERDUE:
            _raise(con, c, LATE, f"{expected} has not arrived", now, f"late:{stamp}", out)
        elif state is SlotState.MISSING:
            late = delivery_store.by_key(con, c.id, f"late:{stamp}")
            if late is not None and late.cleared_at is None:
                _clear(con, late, now, "no file before the next slot: now missing", out)
            _raise(con, c, MISSING, f"{expected} never arrived", now, f"missing:{stamp}", out)


def _refused(
    con: duckdb.DuckDBPyConnection, c: Connection, a: Arrival, now: dt.datetime, out: Outcome
) -> None:
    """The partner's latest file was refused for its content: nothing of it was loaded, and
    only a corrected file sent again helps (a retry reads the same bytes)."""
    why = f": {visible(a.message)}" if a.message else ""
    message = (
        f"file {visible(a.name)} ({_when(a.at, c)}) was refused as a whole{why}; "
        "the partner must fix it and send it again"
    )
    _raise(con, c, FILE_REJECTED, message, now, f"rejected:{a.file_id}", out)


def _volume(
    con: duckdb.DuckDBPyConnection,
    c: Connection,
    a: Arrival,
    usual: list[Arrival],
    now: dt.datetime,
    out: Outcome,
) -> None:
    tolerance = c.volume_tolerance or 0
    median = statistics.median(b.rows for b in usual)
    if median <= 0:
        return
    drift = (a.rows - median) / median * 100
    if abs(drift) > tolerance:
        message = (
            f"file {visible(a.name)} ({_when(a.at, c)}) has {a.rows} rows, the usual is {median:g} "
            f"(±{tolerance} %): {drift:+.0f} %"
        )
        _raise(con, c, VOLUME_DRIFT, message, now, f"volume:{a.file_id}", out)
    else:
        _clear_older(
            con, c, VOLUME_DRIFT, a, now, f"file {visible(a.name)} back in range ({a.rows} rows)", out
        )


def _rejects(
    con: duckdb.DuckDBPyConnection,
    c: Connection,
    a: Arrival,
    usual: list[Arrival],
    now: dt.datetime,
    out: Outcome,
) -> None:
    if a.rows <= 0:
        return
    rate = a.rejected / a.rows
    normal = statistics.median(b.rejected / b.rows for b in usual if b.rows > 0) if usual else 0.0
    if rate >= normal + REJECT_SPIKE_POINTS and rate >= normal * REJECT_SPIKE_FACTOR:
        message = (
            f"file {visible(a.name)} ({_when(a.at, c)}) had {a.rejected} of {a.rows} rows rejected "
            f"({rate:.0%}), the usual is {normal:.0%}"
        )
        _raise(con, c, REJECT_SPIKE, message, now, f"rejects:{a.file_id}", out)
    else:
        _clear_older(
            con, c, REJECT_SPIKE, a, now, f"file {visible(a.name)} back to usual rejects ({rate:.0%})", out
        )


def _clear_older(
    con: duckdb.DuckDBPyConnection,
    c: Connection,
    kind: str,
    a: Arrival,
    now: dt.datetime,
    note: str,
    out: Outcome,
) -> None:
    """Clear open alerts of `kind` raised for files before `a` (a later file is back in range)."""
    for alert in delivery_store.open_alerts(con, c.id):
        if alert.kind == kind and int(alert.dedupe_key.rpartition(":")[2]) < a.file_id:
            _clear(con, alert, now, note, out)
