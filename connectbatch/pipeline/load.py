"""Loading: the one DuckDB transaction that makes a file's rows count.

Inside the caller's transaction it inserts the accepted rows, creates the file's pending
actions (or applies an action-modifications file), stores the rejects and the validation
result, and marks the file loaded, so a crash leaves either all of it or none. Rows that
parsed but could not be applied (an unknown or locked action) become rejects here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import schemas
from connectbatch.models import Connection, FileRecord, FileState
from connectbatch.parser.api import Reject
from connectbatch.pipeline import late, lifecycle
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.store import actions as action_store
from connectbatch.store import data as data_store
from connectbatch.store import runs as run_store


@dataclass(frozen=True)
class Loaded:
    """What one load added to its run's counters."""

    rows_accepted: int
    rows_rejected: int
    actions_created: int


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
) -> Loaded:
    """Load a batch that passed validation: rows, actions, rejects, the validation result,
    the ledger state and the run's counters. `rejects` gains the rows that could not apply."""
    created = load_rows(con, connection, run_id, record, table, lines, rejects, now)
    store_checks(con, run_id, record.id, rejects, report)
    rejected = rejected_rows(rejects)
    accepted = table.num_rows - (rejected - rows_rejected_by_parser)
    run_store.set_file_state(con, record.id, FileState.LOADED, None, accepted, rejected)
    run_store.add_counters(
        con, run_id, rows_accepted=accepted, rows_rejected=rejected, actions_created=created,
    )  # fmt: skip
    return Loaded(accepted, rejected, created)


def load_rows(
    con: duckdb.DuckDBPyConnection,
    connection: Connection,
    run_id: int,
    record: FileRecord,
    table: pa.Table,
    lines: pa.Array,
    rejects: list[Reject],
    now: dt.datetime,
) -> int:
    """Insert rows and create (or apply) actions inside the caller's transaction.
    Returns the number of actions created or changed."""
    dtype = schemas.get(connection.data_type)
    # called through the module: the crash-recovery test hooks data_store.insert_rows
    data_store.insert_rows(
        con, dtype.key, run_id=run_id, file_id=record.id, connection_id=connection.id,
        table=table, lines=lines,
    )  # fmt: skip
    if dtype.key == "action_modifications":
        applied, mod_rejects = lifecycle.apply_modifications(
            con, table, lines, actor=f"file:{record.id}", now=now
        )
        rejects.extend(mod_rejects)
        return applied
    created = action_store.create_for_file(
        con, dtype.key, connection_id=connection.id, run_id=run_id,
        file_id=record.id, lock_days=connection.lock_days,
    )  # fmt: skip
    late.lock_loaded(con, connection, record.id, now)  # issue 11: none created already due to lock
    return created


def store_checks(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    file_id: int,
    rejects: list[Reject],
    report: ValidationReport,
) -> None:
    """The file's rejects and its validation result, kept for the reviewer and the CLI."""
    run_store.insert_rejects(con, run_id, file_id, rejects)
    run_store.insert_validation(
        con, run_id, file_id, report.success, len(report.critical_failures),
        len(report.warnings), report.to_json(),
    )  # fmt: skip


def rejected_rows(rejects: list[Reject]) -> int:
    """Rows rejected, not problems: one row may have several rejects."""
    return len({r.line for r in rejects})


def without_loaded_keys(
    con: duckdb.DuckDBPyConnection,
    dtype: schemas.DataType,
    connection_id: int,
    table: pa.Table,
    lines: pa.Array,
) -> tuple[pa.Table, pa.Array, int]:
    """Drop the rows whose key the connection has already loaded; return how many went."""
    if not dtype.key_columns or table.num_rows == 0:
        return table, lines, 0
    keys = table.column(dtype.key_columns[0]).combine_chunks()
    existing = data_store.existing_keys(con, dtype.key, connection_id, keys)
    if not existing:
        return table, lines, 0
    keep = pc.invert(pc.is_in(keys, value_set=pa.array(existing, keys.type)))
    kept = table.filter(keep)
    return kept, lines.filter(keep), table.num_rows - kept.num_rows
