"""Quarantine: a batch that failed a critical expectation waits for a reviewer.

`hold` keeps its accepted rows as Parquet under `<home>/runs/<run id>/` and marks the file and
the run quarantined; nothing is loaded. `release` loads the held rows as they are (rows whose
key was loaded meanwhile stay out, counted as duplicates); `discard` drops them. Either way
the folder goes and the review note names who decided.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from connectbatch import schemas
from connectbatch.errors import ConnectBatchError
from connectbatch.models import (
    Connection,
    ConnectionStatus,
    FileRecord,
    FileState,
    ReviewState,
    Run,
    RunStatus,
)
from connectbatch.parser.api import ParseResult, Reject, RejectKeys
from connectbatch.pipeline import load, release_rows, results, results_held
from connectbatch.pipeline.clock import Clock
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.settings import Settings
from connectbatch.store import Database, parts
from connectbatch.store import connections as connection_store
from connectbatch.store import data as data_store
from connectbatch.store import runs as run_store
from connectbatch.store import syncback as syncback_store
from connectbatch.store.db import private_dir, private_file

LINE_COLUMN = "__line"  # the physical line of each held row, stored beside it
HEADER_KEY = b"connectbatch.header"  # the held file's own header (JSON), in the Parquet metadata
REJECT_KEYS = b"connectbatch.reject_keys"  # line -> key the parser read of each rejected row (JSON)
REJECT_QUALIFIERS = b"connectbatch.reject_qualifiers"  # line -> its VendorEventId, the same way


def held_path(runs_dir: Path, run_id: int, file_id: int) -> Path:
    return runs_dir / str(run_id) / f"file-{file_id}.parquet"


def settle(
    settings: Settings,
    db: Database,
    run: Run,
    connection: Connection,
    record: FileRecord,
    parsed: ParseResult,
    rejects: list[Reject],
    report: ValidationReport,
) -> None:
    """A batch that failed a critical expectation: held for a reviewer (`hold`), unless
    every row was rejected. Then there is nothing to release (a release would load nothing
    and call the run Completed): the file is refused at once (`refuse_all_rejected`)."""
    if rejects and not parsed.table.num_rows:
        refuse_all_rejected(settings, db, run, connection, record, parsed, rejects, report)
    else:
        hold(settings, db, run, connection, record, parsed, rejects, report)


def refuse_all_rejected(
    settings: Settings,
    db: Database,
    run: Run,
    connection: Connection,
    record: FileRecord,
    parsed: ParseResult,
    rejects: list[Reject],
    report: ValidationReport,
) -> None:
    """A file none of whose rows could be read as valid: REJECTED (the run ends Failed),
    its rejects and verdict stored (`connectbatch rejects`, status files), and a results
    file with each row's reason and a Line 0 FILE_REJECTED row; the partner fixes the rows
    and sends the file again (new bytes: no duplicate)."""
    message = load.every_row_refused(rejects, "nothing to load or review")
    dtype = schemas.get(connection.data_type)
    with db.transaction() as con:
        keys = load.keys_of_rejects(rejects, dtype, parsed.read_of_rejects)
        load.store_checks(con, run.id, record.id, rejects, report, keys)
        syncback_store.save_header(con, record.id, parsed.header)  # status files name their keys
        run_store.set_file_state(con, record.id, FileState.REJECTED, message, 0, parsed.rows_rejected)
        run_store.add_counters(con, run.id, rows_accepted=0, rows_rejected=parsed.rows_rejected)
    results.write_outcome(
        settings.outbound, connection, run.id, record, FileState.REJECTED, rejects=rejects,
        key_columns=list(dtype.key_columns), report=report, message=message,
        read=parsed.read_of_rejects, header=parsed.header, ignored=parsed.unknown_columns,
    )  # fmt: skip


def hold(
    settings: Settings,
    db: Database,
    run: Run,
    connection: Connection,
    record: FileRecord,
    parsed: ParseResult,
    rejects: list[Reject],
    report: ValidationReport,
) -> None:
    """Keep the batch for review: its rows on disk, its rejects and verdict in the store."""
    path = held_path(settings.runs_dir, run.id, record.id)
    private_dir(path.parent)  # the held rows are partners' data: 0700 folders, 0600 files
    held = parsed.table.append_column(LINE_COLUMN, parsed.lines)
    # the file's own header, so the results file after release names the partner's columns
    # and the keys of the rows the parser refused: the results file rewritten after a release
    # or a discard names them as the first one did (the parse is gone by then)
    meta = {
        **(held.schema.metadata or {}),
        HEADER_KEY: json.dumps(parsed.header).encode(),
        REJECT_KEYS: json.dumps(parsed.reject_keys).encode(),
        REJECT_QUALIFIERS: json.dumps(parsed.reject_qualifiers).encode(),
    }
    held = held.replace_schema_metadata(meta)
    pq.write_table(held, path)
    private_file(path)
    # the failures with their values as the batch holds them ("-3.00": GX's sample says -3.0)
    texts = results_held.held_reasons(report, parsed.table, parsed.lines, {}, "").texts
    message = "quarantined: " + "; ".join(texts or report.critical_failures)
    dtype = schemas.get(connection.data_type)
    with db.transaction() as con:
        keys = load.keys_of_rejects(rejects, dtype, parsed.read_of_rejects)
        load.store_checks(con, run.id, record.id, rejects, report, keys)
        syncback_store.save_header(con, record.id, parsed.header)  # status files name their keys
        run_store.set_file_state(
            con, record.id, FileState.QUARANTINED, message, parsed.rows_accepted, parsed.rows_rejected
        )
        run_store.set_review(con, run.id, ReviewState.QUARANTINED, None)
        run_store.add_counters(con, run.id, rows_accepted=0, rows_rejected=parsed.rows_rejected)
    results.write_outcome(
        settings.outbound, connection, run.id, record, FileState.QUARANTINED, table=parsed.table,
        lines=parsed.lines, rejects=rejects, key_columns=list(dtype.key_columns), report=report,
        message=message, read=parsed.read_of_rejects, header=parsed.header, ignored=parsed.unknown_columns,
    )  # fmt: skip


def release(settings: Settings, db: Database, clock: Clock, run_id: int, note: str | None, actor: str) -> Run:
    """Load a quarantined batch as it is (a reviewer accepted it)."""
    released = f"released by {actor}" + (f": {note}" if note else "")
    with db.connect() as con:
        run = run_store.get(con, run_id)
        if run.review is not ReviewState.QUARANTINED:
            raise ConnectBatchError(f"run {run_id} is not quarantined")
        connection = connection_store.get(con, run.connection_id)
        files = [f for f in run_store.files_of_run(con, run_id) if f.state == FileState.QUARANTINED]
        stored = run_store.validation_of_run(con, run_id)
    reports = {file_id: ValidationReport.from_json(text) for file_id, _ok, text in stored}
    dtype = schemas.get(connection.data_type)
    made_per_file: dict[int, load.Made] = {}
    loaded: dict[int, tuple[pa.Table, pa.Array]] = {}
    headers: dict[int, list[str]] = {}
    actions: dict[int, results.RowActions] = {}
    keys: dict[int, dict[int, str]] = {}  # line -> key of each row left out or refused
    events: dict[int, dict[int, str]] = {}  # line -> its VendorEventId, the same way
    accepted = rejected = duplicates = 0  # added to the run's counters
    validated: dict[int, tuple[pa.Table, pa.Array]] = {}  # the batch as validation judged it
    outcome = {f.id: (FileState.LOADED, released) for f in files}  # each file's state and note
    if any(f.rows_accepted >= data_store.PARQUET_MIN_ROWS for f in files):  # commit.ready_for_parts
        parts.ready(db, connection.data_type)
    with db.transaction() as con:
        for f in files:
            table, lines, headers[f.id] = _read_held(settings.runs_dir, run_id, f.id)
            if headers[f.id]:  # status files (sync-back) name the keys as the partner did
                syncback_store.save_header(con, f.id, headers[f.id])
            # A reviewer accepts the batch, not re-sent records: rows whose key is already
            # loaded for the connection, or repeats an earlier row's, stay out (nothing
            # doubled), counted as duplicates and answered as rejected (stored with the
            # rejects: results and sync-back read them); so do negative amounts, as rejected.
            # In this order (release_rows.without_loaded_keys says why)
            held = (table, lines)  # the keys of the rows left out or refused are read here;
            validated[f.id] = held  # and the rows the report names, by position
            table, lines, repeated = release_rows.without_loaded_keys(
                con, dtype, connection.id, table, lines, repeated=False
            )
            table, lines, negative = release_rows.without_negative_amounts(dtype, table, lines)
            table, lines, again = release_rows.without_loaded_keys(
                con, dtype, connection.id, table, lines, loaded=False
            )
            repeated += again
            duplicates += len(repeated)
            keys[f.id], events[f.id] = {}, {}
            loaded[f.id] = (table, lines)
            load_rejects: list[Reject] = []
            made_per_file[f.id] = load.load_rows(
                con, connection, run_id, f, table, lines, load_rejects, clock()
            )
            # rows an action-modifications file could not apply count as rejected
            refused = load.rejected_rows(load_rejects)
            if load_rejects or repeated or negative:
                after = repeated + negative + load_rejects
                keys[f.id], events[f.id] = load.keys_of_rejects(after, dtype, None, held)
                run_store.insert_rejects(con, run_id, f.id, after, keys[f.id], events[f.id])
            # a modifications file none of whose rows applied is refused, as at ingest
            # (load_file): re-sent once the actions exist, it must not be a duplicate
            if dtype.key == "action_modifications" and table.num_rows and refused == table.num_rows:
                why = load.every_row_refused(load_rejects, "no action changed")
                outcome[f.id] = (FileState.REJECTED, why)
            run_store.set_file_state(
                con, f.id, *outcome[f.id],  # the note too: sync-back says it
                table.num_rows - refused, f.rows_rejected + refused + len(negative),
            )  # fmt: skip
            accepted += table.num_rows - refused
            rejected += refused + len(negative)
            actions[f.id] = results.RowActions(
                load.row_actions(con, connection, f.id, table, lines, made_per_file[f.id])
            )
        run_store.set_review(con, run_id, ReviewState.RELEASED, _note(actor, note))
        refused_files = [why for state, why in outcome.values() if state is FileState.REJECTED]
        status = RunStatus.FAILED if len(refused_files) == len(files) else RunStatus.COMPLETED
        run_store.finish(
            con,
            run_id,
            status,
            clock(),
            refused_files[0] if status is RunStatus.FAILED else released,
            actions_created=run.actions_created + sum(m.created for m in made_per_file.values()),
            files_loaded=run.files_loaded + len(files) - len(refused_files),
            rows_accepted=run.rows_accepted + accepted,
            rows_rejected=run.rows_rejected + rejected,
            rows_duplicate=run.rows_duplicate + duplicates,
        )
        now_status = connection_status(con, connection.id, status)
        connection_store.set_status(con, connection.id, now_status, clock())
        stored_rejects = run_store.rejects_of_run(con, run_id)
    for f in files:
        table, lines = (
            loaded[f.id] if outcome[f.id][0] is FileState.LOADED else (None, None)
        )  # refused: Line 0
        kept = [Reject(r.line, r.column, r.value, r.reason) for r in stored_rejects if r.file_id == f.id]
        read = _held_reject_keys(settings.runs_dir, run_id, f.id)
        results.write_outcome(
            settings.outbound, connection, run_id, f, outcome[f.id][0], table=table, lines=lines,
            rejects=kept, key_columns=list(dtype.key_columns), message=outcome[f.id][1],
            actions_created=made_per_file[f.id].created, actions_changed=made_per_file[f.id].changed,
            header=headers[f.id], actions=actions[f.id], report=reports.get(f.id), validated=validated[f.id],
            read=RejectKeys({**read.keys, **keys[f.id]}, {**read.qualifiers, **events[f.id]}),
        )  # fmt: skip
    shutil.rmtree(settings.runs_dir / str(run_id), ignore_errors=True)
    with db.connect() as con:
        return run_store.get(con, run_id)


def discard(settings: Settings, db: Database, clock: Clock, run_id: int, note: str | None, actor: str) -> Run:
    """Drop a quarantined batch: nothing of it is loaded, the ledger says who decided. The
    run reads Failed (its file was refused) and the connection no longer Needs review."""
    reason = f"discarded by {actor}" + (f": {note}" if note else "")
    with db.transaction() as con:
        run = run_store.get(con, run_id)
        if run.review is not ReviewState.QUARANTINED:
            raise ConnectBatchError(f"run {run_id} is not quarantined")
        files = [f for f in run_store.files_of_run(con, run_id) if f.state == FileState.QUARANTINED]
        for f in files:
            run_store.set_file_state(con, f.id, FileState.DISCARDED, reason)  # with the note: sync-back
        run_store.set_review(con, run_id, ReviewState.DISCARDED, _note(actor, note))
        if run.status is RunStatus.NEEDS_REVIEW:
            run_store.finish(con, run_id, RunStatus.FAILED, clock(), reason)
        connection = connection_store.get(con, run.connection_id)
        if connection.status is ConnectionStatus.NEEDS_REVIEW:
            status = connection_status(con, connection.id, _latest_status(con, connection.id))
            connection_store.set_status(con, connection.id, status, clock())
        stored_rejects = run_store.rejects_of_run(con, run_id)
        headers = syncback_store.headers(con, [f.id for f in files])
    # The partner's answer changes with the decision: the results file said QUARANTINED
    # "held for review"; now one Line 0 row says nothing was loaded, and why.
    for f in files:
        kept = [Reject(r.line, r.column, r.value, r.reason) for r in stored_rejects if r.file_id == f.id]
        read = _held_reject_keys(settings.runs_dir, run_id, f.id)
        results.write_outcome(
            settings.outbound, connection, run_id, f, FileState.DISCARDED, rejects=kept,
            message=f"{reason}. Nothing of this file was loaded: correct it and send it again.",
            header=headers.get(f.id), read=read,
        )  # fmt: skip
    shutil.rmtree(settings.runs_dir / str(run_id), ignore_errors=True)
    with db.connect() as con:
        return run_store.get(con, run_id)


def connection_status(
    con: duckdb.DuckDBPyConnection, connection_id: int, run_status: RunStatus
) -> ConnectionStatus:
    """The connection's status after a run ended `run_status`: Failed for a failed transfer or
    file; else Needs review while any batch of the connection awaits a reviewer (a later
    clean run must not bury it); else Completed."""
    if run_status is RunStatus.FAILED:
        return ConnectionStatus.FAILED
    if run_status is RunStatus.NEEDS_REVIEW or any(
        r.connection_id == connection_id for r in run_store.quarantined(con)
    ):
        return ConnectionStatus.NEEDS_REVIEW
    if run_status is RunStatus.IN_PROGRESS:
        return ConnectionStatus.IN_PROGRESS
    return ConnectionStatus.COMPLETED


def _latest_status(con: duckdb.DuckDBPyConnection, connection_id: int) -> RunStatus:
    """The status of the connection's newest finished run (Completed when it has none)."""
    runs = [r for r in run_store.history(con, connection_id, 50) if r.status is not RunStatus.IN_PROGRESS]
    return runs[0].status if runs else RunStatus.COMPLETED


def _read_held(runs_dir: Path, run_id: int, file_id: int) -> tuple[pa.Table, pa.Array, list[str]]:
    path = held_path(runs_dir, run_id, file_id)
    if not path.exists():
        raise ConnectBatchError(f"the quarantined rows of run {run_id} are gone ({path})")
    table = pq.read_table(path)
    lines = table.column(LINE_COLUMN).combine_chunks()
    meta = table.schema.metadata or {}
    header = json.loads(meta[HEADER_KEY]) if HEADER_KEY in meta else []  # held before issue 11: none
    rest = {k: v for k, v in meta.items() if k not in (HEADER_KEY, REJECT_KEYS, REJECT_QUALIFIERS)}
    table = table.drop_columns([LINE_COLUMN]).replace_schema_metadata(rest or None)
    return table, lines, header


def _held_reject_keys(runs_dir: Path, run_id: int, file_id: int) -> RejectKeys:
    """The keys and their VendorEventIds the parser read of a held file's rejected rows (none
    if held before they were kept, or if the held rows are gone)."""
    path = held_path(runs_dir, run_id, file_id)
    meta = (pq.read_schema(path).metadata or {}) if path.exists() else {}
    return RejectKeys(
        *({int(line): str(v) for line, v in json.loads(meta.get(which, b"{}")).items()}
          for which in (REJECT_KEYS, REJECT_QUALIFIERS))
    )  # fmt: skip


def _note(actor: str, note: str | None) -> str:
    return f"{actor}: {note}" if note else actor
