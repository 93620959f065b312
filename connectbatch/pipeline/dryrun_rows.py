"""What a dry run says of the rows the store already knows (`dryrun.run`): a row repeating a
stored record (unchanged, replacing it, or refused), and a modification of an action (as the
load would apply it, against a simulated state: nothing changes). Apart from `dryrun` because
these read the store the way the load does and follow its rules; `dryrun` parses, validates
and writes the answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.models import ActionStatus, Connection
from connectbatch.pipeline import lifecycle, load
from connectbatch.store import actions as action_store
from connectbatch.store import connections as connection_store
from connectbatch.store import data as data_store

__all__ = ["Row", "Would", "modifications", "repeats"]


class Would(StrEnum):
    """A row's status in a dry run's results file: what a real delivery would do."""

    ACCEPT = "WOULD_BE_ACCEPTED"
    REJECT = "WOULD_BE_REJECTED"
    HOLD = "WOULD_BE_HELD"  # the batch would wait for a reviewer
    DUPLICATE = "WOULD_BE_DUPLICATE"  # its key is already loaded: the batch would be held
    REPLACE = "WOULD_REPLACE"  # a new version of the stored record (supersede, catalogs)
    UNCHANGED = "WOULD_BE_UNCHANGED"  # identical to the stored record, or already in effect
    FILE_REJECT = "FILE_WOULD_BE_REJECTED"  # the file as a whole is unreadable (Line 0)
    DRY_RUN = "DRY_RUN"  # the Line 0 summary: nothing was stored


@dataclass(frozen=True)
class Row:
    line: int
    key: str | None
    status: Would
    reason: str = ""
    action_id: str | None = None


def repeats(
    con: duckdb.DuckDBPyConnection,
    dtype: schemas.DataType,
    connection: Connection,
    table: pa.Table,
    lines: pa.Array,
    keys: list[str | None],
    now: dt.datetime,
    special: dict[int, Row],
) -> None:
    """Rows repeating a stored record of the connection: unchanged, replacing it, or refused
    (its action is no longer PENDING before its lock), as `load._merge_rows` decides."""
    found = data_store.repeats(con, dtype.key, connection.id, table, lines)
    key_of = dict(zip([int(x) for x in lines.to_pylist()], keys, strict=True))
    by_line: dict[int, list[data_store.Repeat]] = {}
    for rep in found:
        by_line.setdefault(rep.line, []).append(rep)
    actions = (
        action_store.of_rows(con, [(r.old_file_id, r.old_line) for r in found])
        if dtype.action_columns is not None
        else {}
    )
    for line, reps in by_line.items():
        key = key_of.get(line)
        if any(r.identical for r in reps):
            special[line] = Row(
                line, key, Would.UNCHANGED, "identical to the stored record: nothing would change"
            )
            continue
        if dtype.action_columns is not None:
            held = [actions.get((r.old_file_id, r.old_line)) for r in reps]
            blocking = [a for a in held if a is None or not load._replaceable(a, now)]
            if blocking:
                why = ", ".join(load._why_kept(a, now) for a in blocking)
                special[line] = Row(line, key, Would.REJECT, f"not replaced: {why}")
                continue
            label = next((a.label for a in held if a is not None), None)
            special[line] = Row(line, key, Would.REPLACE, "would replace the stored record", label)
        else:
            special[line] = Row(line, key, Would.REPLACE, "would replace the stored record")


def modifications(
    con: duckdb.DuckDBPyConnection,
    connection: Connection,
    table: pa.Table,
    lines: list[int],
    now: dt.datetime,
    special: dict[int, Row],
) -> None:
    """An action-modifications file, event by event in file order, against a simulated state
    of the actions (nothing changed). Only the actions of the connection's own partner are
    visible (any other id is "no such action"), as the real load (lifecycle) says. What the
    rows ask of the store is read for all of them at once, as the load reads it (a statement
    or four a row made a 10,000-row returns file's dry run take minutes)."""
    partner = connection.partner_id if connection.partner_id is not None else -1
    state: dict[int, tuple[ActionStatus, Decimal, dt.datetime | None]] = {}  # with the newest change
    columns = [c for c in ("ActionId", "Amount", "Reason", lifecycle.DATE) if c in table.column_names]
    rows = table.select(columns).to_pylist()
    ids = sorted({i for i in (lifecycle._id_or_none(r["ActionId"]) for r in rows) if i is not None})
    actions = action_store.of_ids(con, ids)
    partners = connection_store.partners_of(con, sorted({a.connection_id for a in actions.values()}))
    last = action_store.last_effective_of(con, ids)
    by_files = action_store.file_changes_of(con, ids, "")
    for line, row in zip(lines, rows, strict=True):
        raw = row["ActionId"]
        try:
            action_id = lifecycle.parse_action_id(raw)
            action = actions.get(action_id)
            if action is None or partners.get(action.connection_id) != partner:
                raise lifecycle.ActionError("no such action")
            lifecycle._check_changeable(action, now)
            when = lifecycle.event_time(row.get(lifecycle.DATE), action, now)
            old = (action.status, action.amount, None)
            status, amount, newest = state.get(action_id, old)
            new = lifecycle._amount(row["Amount"])
            dated = when if row.get(lifecycle.DATE) is not None else None
            reason = (row.get("Reason") or "").strip() or None
            if lifecycle._in_effect(replace(action, status=status, amount=amount), new) or (
                action_id not in state
                and action_store.made_by_another(by_files.get(action_id, []), new, reason, dated)
            ):
                special[line] = Row(line, str(raw), Would.UNCHANGED, "already made: nothing would change")
                continue
            lifecycle.not_older(action, when, newest or last.get(action_id))
            if new == 0 and reason is None:
                raise lifecycle.ActionError("a reversal needs a reason")
            state[action_id] = (ActionStatus.REVERSED if new == 0 else ActionStatus.MODIFIED, new, when)
            what = f"would reverse {action.label}" if new == 0 else f"would set {action.label} to {new}"
            special[line] = Row(line, str(raw), Would.ACCEPT, what)
        except lifecycle.ActionError as exc:
            where = lifecycle.DATE if isinstance(exc, lifecycle.DateError) else "ActionId"
            special[line] = Row(line, None if raw is None else str(raw), Would.REJECT, f"{where}: {exc}")
