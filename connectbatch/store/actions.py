"""Pending actions and their audit trail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.models import Action, ActionStatus, AuditEntry
from connectbatch.schemas import record_key
from connectbatch.store.data import stored_in
from connectbatch.store.db import all_rows

# The column of a row that names the currency of its amount (conversions), kept on its action.
CURRENCY_COLUMN = "CurrencyCode"
_FIELDS = [
    "id", "connection_id", "run_id", "line", "data_type", "source_key", "event_date", "amount",
    "original_amount", "status", "lock_at", "campaign_id", "media_id", "reason", "state_before_lock",
    "currency",
]  # fmt: skip


# A file of this many rows or more takes its actions' ids as one block (`_reserve`): a
# million nextval calls inside the INSERT took ~0.7 s of a 1M-row load (issue 13), a block
# ~0.04 s; below this, the block's extra statement costs more than the calls it saves.
RESERVE_MIN_ROWS = 5_000
_DAY_MICROS = 86_400_000_000


def create_for_file(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    *,
    connection_id: int,
    run_id: int,
    file_id: int,
    lock_days: int,
    rows: int,
) -> int:
    """One PENDING action per loaded row of the file (which stored `rows` rows); returns how
    many were created."""
    # `file_id = ?`: the scan of the file's own Parquet part skips the other parts
    block = file_id if rows >= RESERVE_MIN_ROWS else None
    return _create(con, data_type, lock_days, "file_id = ?", file_id, stored_in(data_type, rows), block)


def create_for_files(
    con: duckdb.DuckDBPyConnection, data_type: str, *, file_ids: list[int], lock_days: int
) -> int:
    """`create_for_file` for several files of one connection in one statement (group
    commit); returns how many actions were created in all."""
    if not file_ids:
        return 0
    # a group's files are small: in the table (data.insert_many)
    return _create(
        con, data_type, lock_days, "list_contains(?::BIGINT[], file_id)", file_ids, stored_in(data_type, 0)
    )


def _reserve(con: duckdb.DuckDBPyConnection, source: str, file_id: int) -> int | None:
    """What to add to a row's line to make its action's id: the file's lines
    first..last take one block of `seq_actions` values, the line numbers' span (a rejected
    line's id goes unused, as a rolled-back nextval's does). None when the block came out
    split (another statement drew values at the same time): then each row calls nextval.

    The check makes the block safe without a lock: the statement draws exactly `span`
    values, a sequence never gives a value twice, so when they span exactly max - min + 1,
    every value between is this statement's. A file's rows have one line each (its load
    is one transaction, and a file loads once), so base + line is one id a row."""
    row = con.execute(f"SELECT min(line), max(line) FROM {source} WHERE file_id = ?", [file_id]).fetchone()
    if row is None or row[0] is None:
        return None
    first, last = int(row[0]), int(row[1])
    span = last - first + 1
    drawn = con.execute(
        "SELECT min(v), max(v), count(*) FROM (SELECT nextval('seq_actions') AS v FROM range(?))", [span]
    ).fetchone()
    if drawn is None or drawn[2] != span or drawn[1] - drawn[0] + 1 != span:
        return None
    return int(drawn[0]) - first


def _create(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    lock_days: int,
    where: str,
    which: object,
    source: str,
    block: int | None = None,
) -> int:
    """The INSERT of one action per row of `source` matching `where`; `block`: the file
    `where` selects, whose ids come from `_reserve` when it can."""
    dtype = schemas.get(data_type)
    if dtype.action_columns is None:
        return 0
    offset = _reserve(con, source, block) if block is not None else None
    amount, event = (f'"{c}"' for c in dtype.action_columns)
    key = record_key.shown_sql(dtype)  # "C-1 / T-2": which event of the call, and searchable
    media = '"MediaId"' if "MediaId" in dtype.column_names else "NULL"
    currency = f"coalesce(\"{CURRENCY_COLUMN}\", 'USD')" if CURRENCY_COLUMN in dtype.column_names else "NULL"
    ident, params = ("nextval('seq_actions')", []) if offset is None else ("? + line", [offset])
    row = con.execute(
        f"""
        INSERT INTO actions (id, connection_id, run_id, file_id, line, data_type, source_key,
                             campaign_id, media_id, event_date, amount, original_amount, status,
                             lock_at, currency)
        SELECT {ident}, connection_id, run_id, file_id, line, ?, {key},
               "CampaignId", {media}, {event}, coalesce({amount}, 0), coalesce({amount}, 0),
               'PENDING', {lock_at(event)}, {currency}
        FROM {source}
        WHERE {where}
        """,
        [*params, data_type, lock_days, which],
    ).fetchone()
    return int(row[0]) if row else 0


def lock_at(event: str) -> str:
    """SQL for `lock_days` (the next parameter) whole days of 24 hours after `event`.

    Counted in microseconds since the epoch: an interval added to a TIMESTAMPTZ goes
    through the calendar of the session's time zone, ~0.3 s of a 1M-row load (issue 13),
    for the same instant in UTC, the time zone every connection of ours uses."""
    return f"make_timestamptz(epoch_us({event}) + CAST(? AS BIGINT) * {_DAY_MICROS})"


def _select(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Action]:
    rows = con.execute(f"SELECT {', '.join(_FIELDS)} FROM actions {where}", params).fetchall()
    out = []
    for row in rows:
        data = dict(zip(_FIELDS, row, strict=True))
        data["status"] = ActionStatus(data["status"])
        data["state_before_lock"] = data["state_before_lock"] and ActionStatus(data["state_before_lock"])
        out.append(Action(**data))
    return out


def get(con: duckdb.DuckDBPyConnection, action_id: int) -> Action | None:
    found = _select(con, "WHERE id = ?", [action_id])
    return found[0] if found else None


def get_many(con: duckdb.DuckDBPyConnection, action_ids: list[int]) -> dict[int, Action]:
    if not action_ids:
        return {}
    found = _select(con, "WHERE id IN (SELECT unnest(?))", [action_ids])
    return {a.id: a for a in found}


def search(
    con: duckdb.DuckDBPyConnection,
    *,
    connection_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Action]:
    where, params = _filters(connection_id, status)
    return _select(con, f"{where} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset])


def count(
    con: duckdb.DuckDBPyConnection, *, connection_id: int | None = None, status: str | None = None
) -> int:
    where, params = _filters(connection_id, status)
    row = con.execute(f"SELECT count(*) FROM actions {where}", params).fetchone()
    return int(row[0]) if row else 0


def _filters(connection_id: int | None, status: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if connection_id is not None:
        clauses.append("connection_id = ?")
        params.append(connection_id)
    if status in (ActionStatus.REVERSED, ActionStatus.MODIFIED):  # locked ones too (status_text)
        clauses.append("(status = ? OR (status = 'LOCKED' AND state_before_lock = ?))")
        params += [str(status), str(status)]
    elif status is not None:
        clauses.append("status = ?")
        params.append(status)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


@dataclass(frozen=True)
class Change:
    """One modification or reversal of an action, its lifecycle rules checked by the caller."""

    action: Action  # as it stood before this change
    new_status: ActionStatus
    new_amount: Decimal
    # the reason of this change, none if none was given: a reversal's reason stayed on the
    # action after a later modification without one, as if it still said why
    reason: str | None
    actor: str
    kind: str  # "modify" | "reverse"
    effective_at: dt.datetime  # when it took effect at the brand (a ModificationDate, or now)

    @property
    def after(self) -> Action:
        """The action as this change leaves it."""
        return replace(self.action, status=self.new_status, amount=self.new_amount, reason=self.reason)


_AMOUNT = pa.decimal128(18, 2)


def change_all(con: duckdb.DuckDBPyConnection, changes: list[Change]) -> None:
    """Apply changes and audit them, in their order (an action changed twice ends as the last
    one left it, and its audit rows follow one another), in two statements however many
    there are: a modifications file's rows cost two statements each (issue 13)."""
    if not changes:
        return
    _cb_audit = pa.table(
        {
            "n": pa.array(range(len(changes)), pa.int64()),
            "action_id": pa.array([c.action.id for c in changes], pa.int64()),
            "actor": pa.array([c.actor for c in changes], pa.string()),
            "change": pa.array([c.kind for c in changes], pa.string()),
            "old_status": pa.array([str(c.action.status) for c in changes], pa.string()),
            "new_status": pa.array([str(c.new_status) for c in changes], pa.string()),
            "old_amount": pa.array([c.action.amount for c in changes], _AMOUNT),
            "new_amount": pa.array([c.new_amount for c in changes], _AMOUNT),
            "reason": pa.array([c.reason for c in changes], pa.string()),
            "effective_at": pa.array([c.effective_at for c in changes], pa.timestamp("us", tz="UTC")),
        }
    )
    con.execute(  # `_cb_audit` is read by its name (store/db.py)
        "INSERT INTO action_audit (action_id, actor, change, old_status, new_status, old_amount, "
        "new_amount, reason, effective_at) SELECT action_id, actor, change, old_status, new_status, "
        "old_amount, new_amount, reason, effective_at FROM _cb_audit ORDER BY n"
    )
    last = list({c.action.id: c for c in changes}.values())  # each action's last change
    _cb_final = pa.table(
        {
            "id": pa.array([c.action.id for c in last], pa.int64()),
            "status": pa.array([str(c.new_status) for c in last], pa.string()),
            "amount": pa.array([c.new_amount for c in last], _AMOUNT),
            "reason": pa.array([c.reason for c in last], pa.string()),
        }
    )
    con.execute(
        "UPDATE actions SET status = f.status, amount = f.amount, reason = f.reason, "
        "updated_at = current_timestamp FROM _cb_final f WHERE actions.id = f.id"
    )


# `WHERE action_id IN ...` over a list parameter: one statement for a modifications file's
# ids instead of several per row (issue 13: ~14 ms a row, minutes for a returns file).
_IDS = "(SELECT unnest(?::BIGINT[]))"


def of_ids(con: duckdb.DuckDBPyConnection, ids: list[int]) -> dict[int, Action]:
    """The actions of these ids that exist, by id."""
    return {a.id: a for a in _select(con, f"WHERE id IN {_IDS}", [ids])}


def last_effective_of(con: duckdb.DuckDBPyConnection, ids: list[int]) -> dict[int, dt.datetime]:
    """When the newest modification or reversal of each of these actions took effect (its
    ModificationDate, else when it was made), for those that have one: a dated change older
    than this must not overwrite it."""
    rows = con.execute(
        "SELECT action_id, max(coalesce(effective_at, changed_at)) FROM action_audit "
        f"WHERE action_id IN {_IDS} AND change IN ('modify', 'reverse') GROUP BY action_id",
        [ids],
    ).fetchall()
    return {int(r[0]): r[1] for r in rows}


FileChange = tuple[Decimal, str, dt.datetime | None]  # new amount, trimmed reason, effective_at


def file_changes_of(
    con: duckdb.DuckDBPyConnection, ids: list[int], actor: str
) -> dict[int, list[FileChange]]:
    """The changes modifications files other than `actor` made to these actions, for
    `made_by_another`."""
    rows = con.execute(
        "SELECT action_id, new_amount, coalesce(trim(reason), ''), effective_at FROM action_audit "
        f"WHERE action_id IN {_IDS} AND change IN ('modify', 'reverse') AND actor LIKE 'file:%' "
        "AND actor <> ?",
        [ids, actor],
    ).fetchall()
    found: dict[int, list[FileChange]] = {}
    for action_id, amount, reason, effective_at in rows:
        found.setdefault(int(action_id), []).append((amount, reason, effective_at))
    return found


def made_by_another(
    changes: list[FileChange], amount: Decimal, reason: str | None, effective_at: dt.datetime | None
) -> bool:
    """Whether an earlier modifications file (in `file_changes_of`'s rows of one action) made
    this same change: the amount and reason, and `effective_at` (a dated row's
    ModificationDate) unless None. Such a row is that file sent again in other bytes (gzipped,
    re-exported, other line ends), which the ledger cannot tell: applied again, it undid the
    changes made since (a correction by a person, a restored sale; actions audit). A dated
    row with a newer date is a new change and applies."""
    return any(
        a == amount and r == (reason or "") and (effective_at is None or e == effective_at)
        for a, r, e in changes
    )


def lock_due(
    con: duckdb.DuckDBPyConnection, now: dt.datetime, actor: str = "system", reason: str = "lock period ended"
) -> int:
    """Lock every action whose lock time has come by `now`; returns how many were locked."""
    con.execute(
        "INSERT INTO action_audit "
        "(action_id, actor, change, old_status, new_status, old_amount, new_amount, reason) "
        "SELECT id, ?, 'lock', status, 'LOCKED', amount, amount, ? "
        "FROM actions WHERE status <> 'LOCKED' AND lock_at <= ?",
        [actor, reason, now],
    )
    row = con.execute(
        "UPDATE actions SET state_before_lock = status, status = 'LOCKED', updated_at = current_timestamp "
        "WHERE status <> 'LOCKED' AND lock_at <= ?",
        [now],
    ).fetchone()
    return int(row[0]) if row else 0


def audit(con: duckdb.DuckDBPyConnection, action_id: int) -> list[AuditEntry]:
    rows = con.execute(
        "SELECT action_id, changed_at, actor, change, old_status, new_status, old_amount, new_amount, "
        "reason, effective_at FROM action_audit WHERE action_id = ? ORDER BY id",
        [action_id],
    ).fetchall()
    return [AuditEntry(*row) for row in rows]


def delete_for_file(con: duckdb.DuckDBPyConnection, file_id: int) -> None:
    con.execute("DELETE FROM actions WHERE file_id = ?", [file_id])


def of_rows(con: duckdb.DuckDBPyConnection, rows: list[tuple[int, int]]) -> dict[tuple[int, int], Action]:
    """The actions of stored data rows, by (file id, line)."""
    if not rows:
        return {}
    found = con.execute(
        "SELECT a.file_id, a.line, a.id FROM actions a "
        "JOIN (SELECT unnest(?) AS f, unnest(?) AS l) r ON a.file_id = r.f AND a.line = r.l",
        [[r[0] for r in rows], [r[1] for r in rows]],
    ).fetchall()
    by_id = get_many(con, [int(r[2]) for r in found])
    return {(int(r[0]), int(r[1])): by_id[int(r[2])] for r in found}


def supersede(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    replacements: list[tuple[int, int, int]],
    *,
    lock_days: int,
    actor: str,
) -> int:
    """Point still-pending actions at the corrected rows that replace their records:
    (action id, new file id, new line) each. The action keeps its id (partners quote it) and
    its status; amount, event date, lock time, campaign and media follow the corrected row,
    and the audit says old -> new amount. The caller has checked that each is PENDING."""
    dtype = schemas.get(data_type)
    if dtype.action_columns is None or not replacements:
        return 0
    amount, event = (f'"{c}"' for c in dtype.action_columns)
    media = ', media_id = d."MediaId"' if "MediaId" in dtype.column_names else ""
    params = [[r[0] for r in replacements], [r[1] for r in replacements], [r[2] for r in replacements]]
    source = (
        f"SELECT s.action_id, d.* FROM (SELECT unnest(?) AS action_id, unnest(?) AS f, unnest(?) AS l) s "
        f"JOIN {all_rows(data_type)} d ON d.file_id = s.f AND d.line = s.l"
    )
    con.execute(
        "INSERT INTO action_audit "
        "(action_id, actor, change, old_status, new_status, old_amount, new_amount, reason) "
        f"SELECT a.id, ?, 'supersede', a.status, a.status, a.amount, coalesce(d.{amount}, 0), "
        "'corrected record (file ' || d.file_id || ', line ' || d.line || ')' "
        f"FROM actions a JOIN ({source}) d ON a.id = d.action_id",
        [actor, *params],
    )
    row = con.execute(
        f"""
        UPDATE actions a SET file_id = d.file_id, line = d.line, run_id = d.run_id,
               amount = coalesce(d.{amount}, 0), original_amount = coalesce(d.{amount}, 0),
               event_date = d.{event}, lock_at = {lock_at(f"d.{event}")},
               campaign_id = d."CampaignId"{media}, updated_at = current_timestamp
        FROM ({source}) d WHERE a.id = d.action_id
        """,
        [lock_days, *params],
    ).fetchone()
    return int(row[0]) if row else 0


def lock_late_of_file(con: duckdb.DuckDBPyConnection, file_id: int, now: dt.datetime, reason: str) -> int:
    """Lock the file's PENDING actions whose lock time has already come when they are
    created (an event older than the lock period), with `reason` and an audit entry each;
    returns how many. Kept apart from create_for_file: it is the late-events policy."""
    con.execute(
        "INSERT INTO action_audit "
        "(action_id, actor, change, old_status, new_status, old_amount, new_amount, reason) "
        "SELECT id, 'system', 'lock', status, 'LOCKED', amount, amount, ? "
        "FROM actions WHERE file_id = ? AND status = 'PENDING' AND lock_at <= ?",
        [reason, file_id, now],
    )
    row = con.execute(
        "UPDATE actions SET state_before_lock = status, status = 'LOCKED', reason = ?, "
        "updated_at = current_timestamp WHERE file_id = ? AND status = 'PENDING' AND lock_at <= ?",
        [reason, file_id, now],
    ).fetchone()
    return int(row[0]) if row else 0


def of_file_by_line(con: duckdb.DuckDBPyConnection, file_id: int, corrections: bool = False) -> pa.Table:
    """The actions a file's rows created, for the results file: `line`, `label` (as
    models.Action.label, "A-000123") and `note` (why an action was not created PENDING), as
    Arrow columns (a million-row file's actions never become Python objects), in line order
    (the results file then takes them as they come, `results.RowActions.for_lines`).

    With `corrections` (a connection whose re-sent records replace the stored ones), an
    action an earlier file created and this one corrected (it carries a supersede audit entry)
    is noted as corrected, not as created: its correction may have locked it."""
    corrected = (
        "EXISTS (SELECT 1 FROM action_audit u WHERE u.action_id = actions.id AND u.change = 'supersede')"
        if corrections
        else "false"
    )
    return con.sql(
        "SELECT line::BIGINT AS line, printf('A-%06d', id) AS label, "
        f"CASE WHEN status = 'LOCKED' THEN CASE WHEN {corrected} THEN '{CORRECTED_LOCKED}' "
        "ELSE 'action created LOCKED: ' END || coalesce(reason, 'lock period ended') "
        "END AS note FROM actions WHERE file_id = ? ORDER BY line",
        params=[file_id],
    ).to_arrow_table()


CORRECTED_LOCKED = "record corrected; its action is now LOCKED: "


def of_files_by_line(con: duckdb.DuckDBPyConnection, file_ids: list[int]) -> pa.Table:
    """`of_file_by_line` for several files at once, with their `file_id` (group commit)."""
    return con.sql(
        "SELECT file_id, line::BIGINT AS line, printf('A-%06d', id) AS label, "
        "CASE WHEN status = 'LOCKED' THEN 'action created LOCKED: ' || coalesce(reason, 'lock period ended') "
        "END AS note FROM actions WHERE list_contains(?::BIGINT[], file_id) ORDER BY file_id, line",
        params=[file_ids],
    ).to_arrow_table()
