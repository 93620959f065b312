"""Events that arrive already past their lock period (issue 11, defect 5).

Validation accepts events up to `CONNECTBATCH_VALIDATION_MAX_AGE_DAYS` (90) days old, while a
connection's actions lock `lock_days` (30 by default) after their event: without a rule, a
two-month-old call became a PENDING action that was already due to lock, and nobody was told.
Each connection says what happens (`Connection.late_events`):

* `lock` (default): the action is created LOCKED, its reason "event older than the N-day lock
  period" and an audit entry saying so; the results file says it per row.
* `refuse`: the row is rejected with that reason (it is not loaded; the results file says it).

Either way the validation report carries a warning outcome counting the late events, so the
reviewer sees them. The parser's reject-rate rule does not count refused rows: refusing is the
connection's policy, not a sign of a broken file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import schemas
from connectbatch.models import Connection, LateEvents
from connectbatch.parser.api import ParseResult, Reject
from connectbatch.pipeline.validation import ExpectationOutcome, ValidationReport
from connectbatch.store import actions as action_store

LATE_TYPE = "connectbatch_events_within_lock_period"  # the report outcome's expectation type
SAMPLE = 5


def reason(lock_days: int) -> str:
    """The words a LOCKED action, an audit entry, a reject and a results file use."""
    return f"event older than the {lock_days}-day lock period"


def event_column(data_type: str) -> str | None:
    """The column an action's lock time follows (EventDate), or None for a data type that
    creates no actions."""
    columns = schemas.get(data_type).action_columns
    return columns[1] if columns else None


def late_mask(table: pa.Table, connection: Connection, now: dt.datetime) -> pa.Array | None:
    """True for rows whose action would lock at or before `now` (event + lock_days <= now),
    as store/actions.lock_due would lock them; None when the data type creates no actions."""
    column = event_column(connection.data_type)
    if column is None or column not in table.column_names:
        return None
    events = table.column(column).combine_chunks()
    cutoff = pa.scalar(now - dt.timedelta(days=connection.lock_days), events.type)
    return pc.fill_null(pc.less_equal(events, cutoff), False)


def refuse(parsed: ParseResult, connection: Connection, now: dt.datetime) -> tuple[ParseResult, int]:
    """Under the `refuse` policy, take the late rows out of the batch as rejects; returns the
    batch to go on with and how many rows were refused (0: `parsed` itself)."""
    if connection.late_events is not LateEvents.REFUSE:
        return parsed, 0
    mask = late_mask(parsed.table, connection, now)
    if mask is None or not pc.any(mask).as_py():
        return parsed, 0
    column = event_column(connection.data_type)
    assert column is not None
    late_rows = parsed.table.filter(mask)
    late_lines = parsed.lines.filter(mask).to_pylist()
    events = late_rows.column(column).to_pylist()
    dtype = schemas.get(connection.data_type)
    why = reason(connection.lock_days)
    rejects = [
        Reject(line, column, when.isoformat() if when is not None else None, why)
        for line, when in zip(late_lines, events, strict=True)
    ]
    keep = pc.invert(mask)
    # the refused rows leave the batch: the results file names them by what the parser would
    # have kept of a rejected row, their key and its qualifier (VendorEventId)
    read = [dict(parsed.reject_keys), dict(parsed.reject_qualifiers)]
    for column_name, known in zip(dtype.key_columns, read, strict=False):
        values = late_rows.column(column_name).to_pylist() if column_name in late_rows.column_names else []
        known.update({line: str(v) for line, v in zip(late_lines, values, strict=False) if v is not None})
    kept = replace(
        parsed,
        table=parsed.table.filter(keep),
        lines=parsed.lines.filter(keep),
        rejects=sorted([*parsed.rejects, *rejects], key=lambda r: r.line),
        reject_keys=read[0],
        reject_qualifiers=read[1],
    )
    return kept, len(rejects)


def judge(
    report: ValidationReport, table: pa.Table, connection: Connection, now: dt.datetime, refused: int
) -> None:
    """Add the late-events outcome (a warning) to the batch's report: how many events were
    older than the lock period and what the connection's policy did with them."""
    mask = late_mask(table, connection, now)
    if mask is None:
        return
    column = event_column(connection.data_type)
    assert column is not None
    late = refused if connection.late_events is LateEvents.REFUSE else int(pc.sum(mask).as_py() or 0)
    total = table.num_rows + refused
    sample: list[str] = []
    if late and connection.late_events is LateEvents.LOCK:
        sample = [v.isoformat() for v in table.filter(mask).column(column).to_pylist()[:SAMPLE] if v]
    did = (
        "refused (the connection's late-events policy is refuse)"
        if connection.late_events is LateEvents.REFUSE
        else "created LOCKED (the connection's late-events policy is lock)"
    )
    outcome = ExpectationOutcome(
        expectation_type=LATE_TYPE,
        columns=[column],
        severity="warning",
        description=(
            f"{column} within the connection's {connection.lock_days}-day lock period: an older "
            f"event's action would already be due to lock, so it is {did}."
        ),
        success=late == 0,
        observed_value={"unexpected_count": late, "element_count": total, "late_events": late,
                        "lock_days": connection.lock_days, "policy": str(connection.late_events)},
        unexpected_sample=sample,
        kwargs={"lock_days": connection.lock_days, "policy": str(connection.late_events)},
        expectation_id=LATE_TYPE,
    )  # fmt: skip
    report.outcomes.append(outcome)
    report.parameters["late_events"] = late
    report.parameters["late_events_policy"] = str(connection.late_events)
    if late:
        report.warnings.append(outcome.summary())


def lock_loaded(
    con: duckdb.DuckDBPyConnection,
    connection: Connection,
    file_id: int,
    now: dt.datetime,
    table: pa.Table | None = None,
) -> int:
    """Lock the file's freshly created actions that are already past their lock time, with
    the reason and an audit entry. Runs whatever the policy: under `refuse` the late rows are
    gone already, but a held batch released days later may have aged past its lock.
    Given the rows just loaded (`table`), a batch without a late event skips the two
    statements (issue 13: per-file overhead)."""
    if table is not None:
        mask = late_mask(table, connection, now)
        if mask is None or not pc.any(mask).as_py():
            return 0
    return action_store.lock_late_of_file(con, file_id, now, reason(connection.lock_days))
