"""Loading: the one DuckDB transaction that makes a file's rows count.

Inside the caller's transaction it inserts the accepted rows, creates the file's pending
actions (or applies an action-modifications file), stores the rejects and the validation
result, and marks the file loaded, so a crash leaves either all of it or none. Rows that
parsed but could not be applied (an unknown or locked action) become rejects here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import schemas
from connectbatch.models import (
    Action,
    ActionStatus,
    CatalogMode,
    Connection,
    FileRecord,
    FileState,
    Redelivery,
)
from connectbatch.parser.api import Reject, RejectKeys
from connectbatch.pipeline import late, lifecycle, row_notes
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.store import actions as action_store
from connectbatch.store import data as data_store
from connectbatch.store import runs as run_store

if TYPE_CHECKING:
    from connectbatch.pipeline.stream import Streamed


@dataclass(frozen=True)
class Loaded:
    """What one load added to its run's counters."""

    rows_accepted: int
    rows_rejected: int
    actions_created: int
    # The ledger entry as the load left it (None only if it vanished): the ingest answers
    # with it instead of reading it back.
    record: FileRecord | None = None
    # Existing actions it changed (modified, reversed, re-pointed): already added to the
    # run's `actions_changed` by the load itself, kept here for the file's summary.
    actions_changed: int = 0
    notes: tuple[tuple[int, str], ...] = ()  # Made's

    def counters(self) -> dict[str, int]:
        """What the load adds to its run's counters."""
        return {
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "actions_created": self.actions_created,
        }


def load_file(
    con: duckdb.DuckDBPyConnection,
    connection: Connection,
    run_id: int,
    record: FileRecord,
    table: pa.Table,
    lines: pa.Array,
    rejects: list[Reject],
    report: ValidationReport,
    rows_rejected_by_parser: int,
    now: dt.datetime,
    *,
    count: bool = True,
    part: Streamed | None = None,
    read: RejectKeys | None = None,
) -> Loaded:
    """Load a batch that passed validation: rows, actions, rejects, the validation result,
    the ledger state and the run's counters. `rejects` gains the rows that could not apply.
    `count=False`: the caller adds `Loaded.counters()` to the run (in the statement closing
    a single-file run). `part`: a streamed big file's rows, already written (pipeline/stream.py;
    `table` holds some of their columns). `read`: ParseResult.read_of_rejects."""
    made = load_rows(con, connection, run_id, record, table, lines, rejects, now, part=part)
    keys = keys_of_rejects(rejects, schemas.get(connection.data_type), read, (table, lines))
    store_checks(con, run_id, record.id, rejects, report, keys)
    rejected = rejected_rows(rejects)
    accepted = table.num_rows - (rejected - rows_rejected_by_parser)
    state, why = FileState.LOADED, None
    if not accepted and table.num_rows and connection.data_type == "action_modifications":
        # none applied: refused as a whole (the run fails; the same bytes may come again)
        state, why = FileState.REJECTED, every_row_refused(rejects, "no action changed")
    final = run_store.set_file_state(con, record.id, state, why, accepted, rejected)
    loaded = Loaded(accepted, rejected, made.created, final, made.changed, made.notes)
    if count:
        run_store.add_counters(con, run_id, **loaded.counters())
    return loaded


class Made(NamedTuple):
    """What a load did to actions: those it created, and existing ones it changed."""

    created: int
    changed: int = 0
    notes: tuple[tuple[int, str], ...] = ()  # (line, note) of rows with no action of their own (row_notes)


def load_rows(
    con: duckdb.DuckDBPyConnection,
    connection: Connection,
    run_id: int,
    record: FileRecord,
    table: pa.Table,
    lines: pa.Array,
    rejects: list[Reject],
    now: dt.datetime,
    *,
    part: Streamed | None = None,
) -> Made:
    """Insert rows and create (or apply) actions inside the caller's transaction.
    Returns the actions created and changed. Existing actions it changes (a modifications
    file's, a corrected record's re-pointed one) are added to the run's `actions_changed`
    here, with its other repeat counters: a changed action is not a created one."""
    dtype = schemas.get(connection.data_type)
    if part is not None:  # a streamed big file (its modes: stream.streams)
        data_store.adopt_rows(con, dtype.key, file_id=record.id, written=part.path, rows=part.rows)
        created = action_store.create_for_file(
            con, dtype.key, connection_id=connection.id, run_id=run_id,
            file_id=record.id, lock_days=connection.lock_days, rows=part.rows,
        )  # fmt: skip
        late.lock_loaded(con, connection, record.id, now, table)
        return Made(created)
    if dtype.key == "action_modifications":
        outcome = lifecycle.apply_modifications(
            con, table, lines, actor=f"file:{record.id}", now=now,
            partner_id=connection.partner_id if connection.partner_id is not None else -1,
            undated_at=record.received_at, zone=connection.timezone,
        )  # fmt: skip
        rejects.extend(outcome.rejects)
        if outcome.applied or outcome.unchanged:  # every row refused: the file is (load_file)
            con.complete()  # a lookup's result still open is finished before the load writes
            # Only the rows that stand are stored: exports and the data view listed refused
            # ones as changes made (actions audit). Called through the module: the
            # crash-recovery test hooks data_store.insert_rows.
            refused = pa.array([r.line for r in outcome.rejects], pa.int64())
            stand = pc.invert(pc.is_in(lines, value_set=refused))
            data_store.insert_rows(
                con, dtype.key, run_id=run_id, file_id=record.id, connection_id=connection.id,
                table=table.filter(stand), lines=lines.filter(stand),
            )  # fmt: skip
        run_store.add_counters(con, run_id, rows_unchanged=outcome.unchanged, actions_changed=outcome.applied)
        return Made(0, outcome.applied, outcome.unchanged_lines)
    if merges_repeats(dtype, connection):
        made = _merge_rows(con, dtype, connection, run_id, record, table, lines, rejects, now)
        late.lock_loaded(con, connection, record.id, now)  # a corrected record may be past its lock
        return made
    data_store.insert_rows(
        con, dtype.key, run_id=run_id, file_id=record.id, connection_id=connection.id,
        table=table, lines=lines,
    )  # fmt: skip
    created = action_store.create_for_file(
        con, dtype.key, connection_id=connection.id, run_id=run_id,
        file_id=record.id, lock_days=connection.lock_days, rows=table.num_rows,
    )  # fmt: skip
    late.lock_loaded(con, connection, record.id, now, table)  # issue 11: none created already due to lock
    return Made(created)


def row_actions(
    con: duckdb.DuckDBPyConnection, connection: Connection, file_id: int, table: pa.Table, lines: pa.Array,
    made: Made | Loaded | None = None,
) -> pa.Table:  # fmt: skip
    """The action of each loaded row of a file, for its results (`line`, `label`, `note`,
    store/actions.of_file_by_line), after its load in the same transaction. Where repeats
    merge, a row identical to the stored record changed nothing and no action points at it:
    it is answered with the stored record's action, noted unchanged. A row of a data type
    without actions gets the note its load gave it (`made`'s, pipeline/row_notes.py)."""
    dtype = schemas.get(connection.data_type)
    if dtype.action_columns is None:
        return row_notes.noted(made.notes if made is not None else ())
    merging = merges_repeats(dtype, connection)
    found = action_store.of_file_by_line(con, file_id, corrections=merging)
    if not merging:
        return found
    same = [
        r for r in data_store.repeats(con, dtype.key, connection.id, table, lines)
        if r.identical and r.old_file_id != file_id  # this file's own rows are new or replaced
    ]  # fmt: skip
    stored = action_store.of_rows(con, [(r.old_file_id, r.old_line) for r in same])
    kept = [
        (r.line, stored[(r.old_file_id, r.old_line)]) for r in same if (r.old_file_id, r.old_line) in stored
    ]
    if not kept:
        return found
    unchanged = pa.table(
        {
            "line": pa.array([line for line, _ in kept], pa.int64()),
            "label": pa.array([a.label for _, a in kept], pa.string()),
            "note": pa.array([row_notes.UNCHANGED] * len(kept), pa.string()),
        }
    )
    both = pa.concat_tables([found.select(["line", "label", "note"]).cast(unchanged.schema), unchanged])
    return both.sort_by("line")


def merges_repeats(dtype: schemas.DataType, connection: Connection) -> bool:
    """Whether a row repeating a stored record replaces it (rather than being refused):
    always for product catalogs (a catalog is a snapshot or an update of the items), and for
    any keyed data type on a connection in `supersede` mode (a corrected re-delivery)."""
    if not dtype.key_columns or dtype.key == "action_modifications":
        return False
    return dtype.key == "product_catalogs" or connection.redelivery is Redelivery.SUPERSEDE


def refuses_repeats(dtype: schemas.DataType, connection: Connection) -> bool:
    """Whether a row whose key the connection already loaded fails validation ("already
    loaded", the batch is held for review). Not for modification files: their rows are events
    (identified by file and line), and not where repeats replace records."""
    keyed = bool(dtype.key_columns) and dtype.key != "action_modifications"
    return keyed and not merges_repeats(dtype, connection)


def _merge_rows(
    con: duckdb.DuckDBPyConnection, dtype: schemas.DataType, connection: Connection, run_id: int,
    record: FileRecord, table: pa.Table, lines: pa.Array, rejects: list[Reject], now: dt.datetime,
) -> Made:  # fmt: skip
    """Load a file whose rows may repeat stored records, version by version.

    A row with a new key is inserted (and gets its action). A row identical to the current
    stored record changes nothing (counted unchanged). A changed row ends the stored version
    (`valid_to`, kept for history) and is inserted as the current one; where the record has an
    action, the action must still be PENDING and before its lock: it is then re-pointed at the
    corrected row and audited ('supersede'), else the row is refused with the reason and the
    stored record stays as it was. A catalog in snapshot mode then marks removed every item the
    file does not list, unless rows were rejected (the snapshot is then incomplete: a rejected
    item would read as removed), which the run's reason says.
    Returns the actions created and re-pointed (the run's `actions_changed`).
    """
    table = data_store.with_stored_columns(con, dtype.key, connection.id, table)  # a partial catalog update
    found = data_store.repeats(con, dtype.key, connection.id, table, lines)
    by_line: dict[int, list[data_store.Repeat]] = {}
    for rep in found:
        by_line.setdefault(rep.line, []).append(rep)
    unchanged = {line for line, reps in by_line.items() if any(r.identical for r in reps)}
    changed = {line: reps for line, reps in by_line.items() if line not in unchanged}
    pointed: dict[int, list[int]] = {}  # incoming line -> action ids to re-point
    if dtype.action_columns is not None and changed:
        key_column = dtype.key_columns[0]
        keys = dict(zip(lines.to_pylist(), table.column(key_column).to_pylist(), strict=True))
        stored = [(r.old_file_id, r.old_line) for reps in changed.values() for r in reps]
        actions = action_store.of_rows(con, stored)
        for line, reps in list(changed.items()):
            held = [actions.get((r.old_file_id, r.old_line)) for r in reps]
            blocking = [a for a in held if a is None or not _replaceable(a, now)]
            if not blocking:
                pointed[line] = [a.id for a in held if a is not None]
                continue
            del changed[line]
            why = ", ".join(_why_kept(a, now) for a in blocking)
            rejects.append(Reject(line, key_column, str(keys[line]), f"not replaced: {why}"))
    line_list = lines.cast(pa.int64())
    fresh = pc.invert(pc.is_in(line_list, value_set=pa.array(list(by_line), pa.int64())))
    new = table.filter(fresh)
    data_store.insert_rows(
        con, dtype.key, run_id=run_id, file_id=record.id, connection_id=connection.id,
        table=new, lines=lines.filter(fresh),
    )  # fmt: skip
    # actions for the new records only: the corrected rows are inserted after this
    created = action_store.create_for_file(
        con, dtype.key, connection_id=connection.id, run_id=run_id,
        file_id=record.id, lock_days=connection.lock_days, rows=new.num_rows,
    )  # fmt: skip
    replacing = pc.is_in(line_list, value_set=pa.array(list(changed), pa.int64()))
    data_store.end_rows(
        con, dtype.key, [(r.old_file_id, r.old_line) for reps in changed.values() for r in reps],
        by_file=record.id, at=now, reason="updated",
    )  # fmt: skip
    data_store.insert_rows(
        con, dtype.key, run_id=run_id, file_id=record.id, connection_id=connection.id,
        table=table.filter(replacing), lines=lines.filter(replacing),
    )  # fmt: skip
    repointed = action_store.supersede(
        con, dtype.key, [(a, record.id, line) for line, ids in pointed.items() for a in ids],
        lock_days=connection.lock_days, actor=f"file:{record.id}",
    )  # fmt: skip
    removed = 0
    if dtype.key == "product_catalogs" and connection.catalog_mode is CatalogMode.SNAPSHOT:
        if rejects or record.rows_rejected:
            run_store.note(
                con, run_id, f"{record.name}: rows were rejected, so this snapshot is incomplete: "
                "no catalog item was marked removed",
            )  # fmt: skip
        elif table.num_rows == 0:  # a broken export, far likelier than a catalog sold out
            run_store.note(
                con, run_id, f"{record.name}: the snapshot lists no items, so no catalog item was "
                "marked removed; to remove items, send a snapshot of the items to keep",
            )  # fmt: skip
        else:
            keys_listed = table.column(dtype.key_columns[0]).combine_chunks()
            removed = data_store.end_missing(
                con, dtype.key, connection.id, keys_listed, by_file=record.id, at=now
            )
            if removed:
                run_store.note(
                    con, run_id, f"{record.name}: {removed:,} catalog item{'s' if removed > 1 else ''} "
                    "not in this snapshot marked removed",
                )  # fmt: skip
    run_store.add_counters(
        con, run_id, rows_unchanged=len(unchanged), rows_replaced=len(changed), rows_removed=removed,
        actions_changed=repointed,
    )  # fmt: skip
    if dtype.action_columns:  # their actions answer the rows (row_actions)
        return Made(created, repointed)
    said = [(n, row_notes.SAME_RECORD) for n in unchanged] + [(n, row_notes.REPLACED) for n in changed]
    return Made(created, repointed, tuple(said))


def _replaceable(action: Action, now: dt.datetime) -> bool:
    """Only a PENDING action before its lock time may take a corrected record."""
    return action.status is ActionStatus.PENDING and action.lock_at > now


def _why_kept(action: Action | None, now: dt.datetime) -> str:
    """Why a corrected record could not replace the stored one."""
    if action is None:
        return "the stored record has no action"
    if action.status is ActionStatus.PENDING and action.lock_at <= now:
        return f"action {action.label} is past its lock time"
    return f"action {action.label} is {action.status}; only a PENDING action can be replaced"


def store_checks(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    file_id: int,
    rejects: list[Reject],
    report: ValidationReport,
    keys: RejectKeys | None = None,
) -> None:
    """The file's rejects (with their rows' `keys` by line) and its validation result, kept
    for the reviewer, the CLI and the partner's status files."""
    run_store.insert_rejects(con, run_id, file_id, rejects, *(keys or ()))
    run_store.insert_validation(
        con, run_id, file_id, report.success, len(report.critical_failures),
        len(report.warnings), report.to_json(),
    )  # fmt: skip


def keys_of_rejects(
    rejects: list[Reject],
    dtype: schemas.DataType,
    read: RejectKeys | None,
    rows: tuple[pa.Table, pa.Array] | None = None,
) -> RejectKeys:
    """The key and qualifier of each rejected row (`_column_of_rejects`, for each)."""
    read = read or RejectKeys({}, {})
    return RejectKeys(*(_column_of_rejects(rejects, dtype, known, rows, i) for i, known in enumerate(read)))


def _column_of_rejects(
    rejects: list[Reject],
    dtype: schemas.DataType,
    parser_keys: Mapping[int, str],
    rows: tuple[pa.Table, pa.Array] | None,
    position: int,
) -> dict[int, str]:
    """Key column `position` of each rejected row, by line, as far as it can be read: what
    the parser read of a row it refused (for any column), else the value of a reject about
    that key column itself (a row refused after parsing: already loaded, not replaced, an
    unknown action), else the value in the parsed row (`rows`: table and lines) a later step
    refused for another column (a modification's ModificationDate)."""
    keys = dict(parser_keys)
    key_column = dtype.key_columns[position] if len(dtype.key_columns) > position else None
    for r in rejects:
        if r.line not in keys and r.column == key_column and r.value is not None:
            keys[r.line] = r.value
    missing = {r.line for r in rejects} - keys.keys()
    if missing and rows is not None and key_column in rows[0].column_names:
        table, lines = rows
        hit = pc.is_in(lines, value_set=pa.array(sorted(missing), lines.type))
        found = table.column(key_column).filter(hit).to_pylist()
        keys.update(
            {ln: str(k) for ln, k in zip(lines.filter(hit).to_pylist(), found, strict=True) if k is not None}
        )
    return keys


def every_row_refused(rejects: list[Reject], outcome: str) -> str:
    """Why a file none of whose rows could be used is refused, with its first reject."""
    n, first = rejected_rows(rejects), min(rejects, key=lambda r: r.line)
    e_g = f"e.g. line {first.line}: " + (f"{first.column}: " if first.column else "") + first.reason
    return f"every row was rejected ({n} of {n}): {outcome}; fix the rows and send the file again ({e_g})"


def rejected_rows(rejects: list[Reject]) -> int:
    """Rows rejected, not problems: one row may have several rejects."""
    return len({r.line for r in rejects})
