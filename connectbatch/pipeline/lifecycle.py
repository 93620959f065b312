"""The pending-action lifecycle: PENDING -> MODIFIED / REVERSED -> LOCKED.

Rules, in one place: an action can be modified (new amount) or reversed (amount 0, with a
reason) until its connection's lock period has passed since the event date; after that it
is LOCKED and nothing changes it. A lock time that has passed counts as locked even before
the lock job has run, so the outcome never depends on when the job last ran. Every change
is written to the audit table by the store in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from connectbatch.errors import ConnectBatchError
from connectbatch.models import ACTION_ID, Action, ActionStatus
from connectbatch.parser import reasons, refcore
from connectbatch.parser.api import Reject
from connectbatch.parser.plan import Code, CoreKind, Plan, Slot
from connectbatch.pipeline import row_notes
from connectbatch.store import actions as action_store
from connectbatch.store import connections as connection_store


class ActionError(ConnectBatchError, ValueError):
    """A change the lifecycle does not allow (locked, unknown, bad amount)."""


def parse_action_id(text: str | int) -> int:
    """Accept 123, "123", "A-000123" or "a123"."""
    if isinstance(text, int):
        return text
    match = ACTION_ID.fullmatch(text)
    if not match:
        raise ActionError(f"{text!r} is not an action id (expected e.g. A-000123)")
    return int(match[1])


def is_locked(action: Action, now: dt.datetime) -> bool:
    return action.status is ActionStatus.LOCKED or action.lock_at <= now


def _check_changeable(action: Action, now: dt.datetime) -> None:
    if action.lock_at <= now:
        raise ActionError(
            f"action {action.label} is locked since {action.lock_at:%Y-%m-%d %H:%M} UTC (the end "
            "of its lock period) and can no longer change"
        )
    if action.status is ActionStatus.LOCKED:
        raise ActionError(f"action {action.label} is locked and can no longer change")


# How a file's Amount cell is read (a one-column plan of the parser's own DECIMAL converter):
# an amount typed on the command line or in the app follows the same rule, so a value a file
# would be refused for is never quietly rounded instead.
_AMOUNT_SLOT = Slot("Amount", CoreKind.DECIMAL, True, None)
_AMOUNT_PLAN = Plan(ord(","), ("Amount",), (0,), (_AMOUNT_SLOT,))
# The parser's refusals that say more than "not an amount": the file's reject words.
_AMOUNT_REASONS = (Code.DECIMAL_SCALE, Code.DECIMAL_RANGE)


def _amount(value: Decimal | float | str) -> Decimal:
    """The amount a person or a file gives, as the action will hold it (2 decimals).

    One rule with the parser's (`refcore.convert`, which the compiled core is held equal
    to): 12.50, 1,234.50 or $12.50; at most 2 decimals unless the extra ones are zeros
    (12.345 is refused, not rounded to 12.34); NaN and Infinity are no amounts (a quiet NaN
    once passed `quantize` and failed the comparison below as an internal error). A Decimal
    is written out in plain digits first (Decimal("1E+2") is 100), without the zeros a
    number's scale adds (Decimal("1.500") is 1.5: text written that way is ambiguous, a
    number is not)."""
    text = format(value, "f") if isinstance(value, Decimal) else str(value)  # as shown
    plain = format(value.normalize(), "f") if isinstance(value, Decimal) else text
    try:
        amount = refcore.convert(plain.encode("utf-8", "replace"), _AMOUNT_SLOT)
    except refcore.CellRejected as exc:
        if exc.code in _AMOUNT_REASONS:
            why = reasons.sentence(exc.code, _AMOUNT_SLOT, _AMOUNT_PLAN, 0, "utf-8")
            raise AmountError(f"{value!r}: {why}", text) from None
        raise AmountError(f"{value!r} is not an amount{reasons.decimal_hint(text)}", text) from None
    assert isinstance(amount, Decimal)
    if amount < 0:
        raise AmountError("an amount cannot be negative; reverse the action instead", text)
    return amount


class AmountError(ActionError):
    """An amount refused (`value`, as given): a modifications row's reject names its Amount
    column and value, not the ActionId beside it."""

    def __init__(self, message: str, value: str) -> None:
        super().__init__(message)
        self.value = value


def modify(
    con: duckdb.DuckDBPyConnection,
    action_id: int,
    amount: Decimal | float | str,
    *,
    reason: str | None,
    actor: str,
    now: dt.datetime,
    effective_at: dt.datetime | None = None,
) -> Action:
    """Set a new amount; an amount of 0 is a reversal and needs a reason. `effective_at`:
    when the change happened at the brand (a file's ModificationDate), else `now`.

    The amount the action already has is refused as nothing to change, as reversing a
    reversed action is: a file's same event is counted unchanged (`apply_modifications`),
    and a person's must not become a MODIFIED status, an audit row of 49.99 -> 49.99 and
    a 'modified' row sent back to the partner."""
    new_amount = _amount(amount)
    if new_amount == 0:
        return reverse(con, action_id, reason=reason or "", actor=actor, now=now, effective_at=effective_at)
    return _change_now(con, _change(_get(con, action_id), new_amount, reason=reason, actor=actor, now=now,
                                    effective_at=effective_at))  # fmt: skip


def reverse(
    con: duckdb.DuckDBPyConnection,
    action_id: int,
    *,
    reason: str,
    actor: str,
    now: dt.datetime,
    effective_at: dt.datetime | None = None,
) -> Action:
    if not reason or not reason.strip():
        raise ActionError("a reversal needs a reason")
    return _change_now(con, _change(_get(con, action_id), Decimal("0.00"), reason=reason, actor=actor,
                                    now=now, effective_at=effective_at))  # fmt: skip


def _change_now(con: duckdb.DuckDBPyConnection, change: action_store.Change) -> Action:
    action_store.change_all(con, [change])
    return change.after


def _change(
    action: Action,
    new_amount: Decimal,
    *,
    reason: str | None,
    actor: str,
    now: dt.datetime,
    effective_at: dt.datetime | None,
) -> action_store.Change:
    """The change `modify` (a new amount) or `reverse` (0) makes to `action` as read, its
    rules checked; made by `action_store.change_all`, at once for a person's and after the
    whole file for a modifications file's (`apply_modifications`)."""
    _check_changeable(action, now)
    if new_amount == 0:
        if not reason or not reason.strip():
            raise ActionError("a reversal needs a reason")
        if action.status is ActionStatus.REVERSED:
            raise ActionError(f"action {action.label} is already reversed")
        status, kind, reason = ActionStatus.REVERSED, "reverse", reason.strip()
    elif _in_effect(action, new_amount):
        raise ActionError(f"action {action.label} already has the amount {action.amount}; nothing changed")
    else:
        status, kind = ActionStatus.MODIFIED, "modify"
    return action_store.Change(action, status, new_amount, reason, actor, kind, effective_at or now)


def lock_due(con: duckdb.DuckDBPyConnection, now: dt.datetime, early_by: str | None = None) -> int:
    """Lock what is due by `now`: the lock job's ("system", "lock period ended"), or, before
    the lock period ends, the person's (`early_by`), said so in the audit."""
    if early_by is None:
        return action_store.lock_due(con, now)
    why = f"locked early by {early_by}, as due by {now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    return action_store.lock_due(con, now, actor=early_by, reason=why)


def _id_or_none(text: str | int) -> int | None:
    try:
        return parse_action_id(text)
    except ActionError:
        return None


def _get(con: duckdb.DuckDBPyConnection, action_id: int) -> Action:
    action = action_store.get(con, action_id)
    if action is None:
        raise ActionError(f"there is no action A-{action_id:06d}")
    return action


@dataclass(frozen=True)
class Applied:
    """What an action-modifications file did: changes made, events that were already in effect,
    and the rows that could not apply."""

    applied: int
    unchanged: int
    rejects: list[Reject]
    # (file line, row_notes' note) of the events that changed nothing: in effect, or sent before
    unchanged_lines: tuple[tuple[int, str], ...] = ()


def apply_modifications(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    lines: pa.Array,
    *,
    actor: str,
    now: dt.datetime,
    partner_id: int | None = None,
    undated_at: dt.datetime | None = None,
    zone: str = "UTC",
) -> Applied:
    """Apply an action-modifications file (ActionId, Amount, Reason rows).

    The rows are events, applied in file order: their identity is the file and the line, not
    the ActionId, so a later file (or a later line) may change the same action again, e.g.
    reverse an action an earlier file modified. The same bytes again are a ledger duplicate
    and never get here; the same event re-sent in another file changes nothing and is counted
    as unchanged: reversing a reversed action, or setting the amount an action already has,
    is a no-op (no audit row), not an error.

    A row's ModificationDate says when the change happened at the brand (empty: when the
    file arrived, `undated_at`, else now: a held file released days later must not count as
    newer than a person's change made meanwhile; never before the action's own event). The
    newest change wins: a row dated before the change the action already carries (files sent
    out of order) is refused, not applied over it; a date in the future, at or after the
    action's lock time, or before the action's event, is refused too. A backdated row does
    not reopen a locked action: the lock is judged at processing time, as for a person.

    Unknown and locked actions become rejects; the other rows still apply. A refused date is
    shown in `zone`, the connection's (`as_written`). The file may come
    through another connection than the actions did (a brand's returns system), but only
    actions of the same partner (`partner_id`, the modifications connection's) may change:
    another partner's action is "no such action", word for word, so a file cannot probe
    which ids exist.
    """
    applied = 0
    unchanged: list[tuple[int, str]] = []
    rejects: list[Reject] = []
    columns = [c for c in ("ActionId", "Amount", "Reason", DATE) if c in table.column_names]
    rows = table.select(columns).to_pylist()
    # What the rows ask of the store, read for all of them at once (issue 13: ~8 statements
    # a row, 14 ms, cost a 10,000-row returns file over two minutes); a change made by an
    # earlier row is carried into what the later rows of the same action see.
    ids = sorted({i for i in (_id_or_none(r["ActionId"]) for r in rows) if i is not None})
    actions = action_store.of_ids(con, ids)
    partners = connection_store.partners_of(con, sorted({a.connection_id for a in actions.values()}))
    newest = action_store.last_effective_of(con, ids)
    by_files = action_store.file_changes_of(con, ids, actor)
    changes: list[action_store.Change] = []
    for line, row in zip(lines.to_pylist(), rows, strict=True):
        raw_id = row["ActionId"]
        try:
            action_id = parse_action_id(raw_id)
            action = actions.get(action_id)
            theirs = action is not None and partners.get(action.connection_id) == partner_id
            if action is None or (partner_id is not None and not theirs):
                raise ActionError("no such action")
            _check_changeable(action, now)
            undated = max(undated_at, action.event_date) if undated_at is not None else None
            when = event_time(row.get(DATE) or undated, action, now)
            amount = _amount(row["Amount"])
            if _in_effect(action, amount):
                unchanged.append((int(line), row_notes.IN_EFFECT))
                continue
            dated = when if row.get(DATE) is not None else None
            reason = (row.get("Reason") or "").strip() or None
            if action_store.made_by_another(by_files.get(action_id, []), amount, reason, dated):
                unchanged.append((int(line), row_notes.APPLIED_BEFORE))
                continue
            not_older(action, when, newest.get(action_id))
            change = _change(action, amount, reason=row["Reason"], actor=actor, now=now, effective_at=when)
            changes.append(change)
            actions[action_id] = change.after
            newest[action_id] = max(when, newest.get(action_id, when))
            applied += 1
        except DateError as exc:  # an undated row's date is ours (arrival): its value is empty
            sent = as_written(exc.when, zone) if row.get(DATE) is not None else ""
            rejects.append(Reject(line, DATE, sent, str(exc)))
        except AmountError as exc:
            rejects.append(Reject(line, "Amount", exc.value, str(exc)))
        except ActionError as exc:
            rejects.append(Reject(line, "ActionId", str(raw_id), str(exc)))
    action_store.change_all(con, changes)
    return Applied(applied, len(unchanged), rejects, tuple(unchanged))


DATE = "ModificationDate"


class DateError(ActionError):
    """A modification row refused for its ModificationDate (`when`, as read)."""

    def __init__(self, message: str, when: dt.datetime) -> None:
        super().__init__(message)
        self.when = when


def as_written(when: dt.datetime, zone: str) -> str:
    """A ModificationDate as a partner writes it: the wall time in the connection's time zone
    (the zone its dates without an offset are read in), e.g. "2026-12-05 01:00:00" for a
    Los Angeles brand. The reject showed it in UTC ("2026-12-05T09:00:00+00:00"), a value
    found nowhere in the file; the reason still gives UTC."""
    local = when.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return local.isoformat(sep=" ")


def _utc(when: dt.datetime) -> str:
    return f"{when.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


# How far ahead of our clock a ModificationDate may be and still count as "now": a brand's
# clock, or a connection whose time zone is set a few hours off the file's wall times (the
# widest UTC offset is 14 hours), must not get every fresh change refused as "in the future".
FUTURE_SKEW = dt.timedelta(hours=14)


def event_time(date: dt.datetime | None, action: Action, now: dt.datetime) -> dt.datetime:
    """When a modifications row's change happened: its ModificationDate, else `now`; a date
    up to FUTURE_SKEW ahead is taken as `now`. A date at or after the action's lock time,
    further in the future, or before the action's own event, is refused (DateError)."""
    when = date or now
    if when >= action.lock_at:  # as sent: a date at the lock, taken as now, still came too late
        raise DateError(
            f"dated {_utc(when)}, at or after {action.label} locks ({_utc(action.lock_at)}): "
            "a change must happen before the lock",
            when,
        )
    if now < when <= now + FUTURE_SKEW:
        when = now
    if when > now:
        raise DateError(f"dated {_utc(when)}, in the future", when)
    if when < action.event_date:
        raise DateError(
            f"dated {_utc(when)}, before the event of {action.label} ({_utc(action.event_date)}): "
            "a change cannot happen before what it changes",
            when,
        )
    return when


def not_older(action: Action, when: dt.datetime, newest: dt.datetime | None) -> None:
    """Refuse (DateError) a change dated before the newest one the action already carries:
    a modification sent late must not overwrite a newer one. The same time applies (line
    and file order)."""
    if newest is not None and when < newest:
        raise DateError(
            f"dated {_utc(when)}, before the newer change of {action.label} dated {_utc(newest)}, "
            "which stays in effect",
            when,
        )


def _in_effect(action: Action, amount: Decimal) -> bool:
    """True when the event would leave the action as it is: a reversal of a reversed action,
    or the amount a (pending or modified) action already has."""
    if amount == 0:
        return action.status is ActionStatus.REVERSED
    return action.status is not ActionStatus.REVERSED and action.amount == amount
