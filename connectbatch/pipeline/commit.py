"""The database half of a batch that passed validation: its load inside a transaction the
caller owns (a file's own, or a group's: `pipeline/group.py`), and its results file once that
transaction has committed. `Ingestor.commit` and group commit share it, so a file loaded in a
group is stored and answered exactly as one loaded alone."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.compute as pc

from connectbatch import schemas
from connectbatch.models import Connection, FileRecord, FileState, Run
from connectbatch.parser.api import Reject
from connectbatch.pipeline import closing, history, late, load, owed, results
from connectbatch.pipeline.compute import Computed
from connectbatch.store import Database, parts, run_groups
from connectbatch.store import actions as action_store
from connectbatch.store import data as data_store
from connectbatch.store import runs as run_store
from connectbatch.store import syncback as syncback_store

log = logging.getLogger("connectbatch.pipeline.ingest")
# Writes a file's answer while its load transaction closes the run (`load_in`).
_answers = futures.ThreadPoolExecutor(2, thread_name_prefix="cb-answer")


class Stopwatch:
    """Seconds per pipeline stage, kept in the summary for benchmarks and slow-run triage."""

    def __init__(self) -> None:
        self.step = "parse"  # the stage under way, named in a failure
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


class RunEnd:
    """Where `Ingestor.commit` leaves a single-file run it closed in the file's load transaction."""

    def __init__(self) -> None:
        self.run: Run | None = None


@dataclass
class LoadDone:
    """What a load transaction leaves for the results file: the load, the actions per line,
    the rejects (the parser's and the load's) and, for a run it closed, the run."""

    loaded: load.Loaded
    actions: results.RowActions
    rejects: list[Reject]
    closed: Run | None
    owed: list[Path] | None = None  # the answer, written before the commit (`owe_answer`)
    answer_failed: str | None = None  # why it could not be


class LoadedMeanwhile(Exception):
    """Records of a batch that another delivery loaded after the batch's own "already
    loaded" check and before its load (`still_new`): the batch is judged again with them."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"{len(keys)} records loaded meanwhile")
        self.keys = keys


def still_new(
    con: duckdb.DuckDBPyConnection,
    connection: Connection,
    computed: Computed,
    mark: tuple[int, int] | None = None,
) -> None:
    """Raise LoadedMeanwhile when the load transaction finds records of the batch loaded.

    The "already loaded" check runs before validation, outside the load's transaction, and a
    push may overlap another run of its connection (and a process gives the database to
    another while it parses): the same records delivered twice at once (the same bytes under
    another name, CRLF line endings, a retry beside the upload taken in again) were both
    loaded, every action twice (found by an audit with two real processes). Asked again here,
    inside the transaction that loads, the answer cannot change before the commit (two loads
    of one connection at once in one process conflict on its row: the second fails).

    Not asked when the database's write mark (`mark`, now) is the one taken before the check
    (`Computed.checked`): nothing was written since, the answer stands (a statement less)."""
    parsed = computed.parsed
    dtype = schemas.get(connection.data_type)
    if parsed is None or not parsed.table.num_rows or not load.refuses_repeats(dtype, connection):
        return
    if mark is not None and computed.checked == mark:
        return
    keys = data_store.existing_keys(con, dtype.key, connection.id, parsed.table)
    if keys:
        raise LoadedMeanwhile(keys)


def load_alone(
    db: Database, outbound: Path, connection: Connection, run: Run, record: FileRecord,
    computed: Computed, now: dt.datetime, clock: Stopwatch, *, close: bool,
) -> LoadDone | LoadedMeanwhile:  # fmt: skip
    """A file's own load transaction (`load_in` after `still_new`, its answer owed before the
    commit: `owe_answer`); rolled back, nothing written, when records of the batch were
    loaded meanwhile (returned, to judge it again)."""
    done: LoadDone | None = None
    ready_for_parts(db, connection, [computed])
    try:
        with db.transaction() as con:  # the mark once the file is open: a reopen is one more
            still_new(con, connection, computed, db.write_mark())

            def answer(loaded: LoadDone) -> None:
                owe_answer(outbound, connection, run, record, computed, loaded, clock)

            done = load_in(con, connection, run, record, computed, now, close=close, answer=answer)
        return done
    except LoadedMeanwhile as raced:
        return raced
    except BaseException:
        discard_owed([done])
        raise


def ready_for_parts(db: Database, connection: Connection, batches: Iterable[Computed]) -> None:
    """Before a load transaction: the data type's views read its parts folder if a batch may
    become a Parquet part (store/parts.ready says why this is not done inside the load)."""
    for computed in batches:
        parsed = computed.parsed.table.num_rows if computed.parsed is not None else 0
        if (computed.part.rows if computed.part is not None else parsed) >= data_store.PARQUET_MIN_ROWS:
            parts.ready(db, connection.data_type)
            return


def discard_owed(dones: Iterable[LoadDone | None]) -> None:
    """The owed answers of loads that rolled back."""
    owed.discard(p for d in dones if d is not None for p in d.owed or ())


def load_in(
    con: duckdb.DuckDBPyConnection,
    connection: Connection,
    run: Run,
    record: FileRecord,
    computed: Computed,
    now: dt.datetime,
    *,
    close: bool,
    connection_status: bool = True,
    answer: Callable[[LoadDone], None] | None = None,
) -> LoadDone:
    """A batch that passed validation, loaded inside the caller's transaction: rows, rejects,
    validation result, actions, header, ledger state. With `close` (the run's only file) the
    same transaction closes the run, and with `connection_status` the connection's status
    follows it (a group sets it once, after its last run).

    `answer` (a file loaded alone: its results written under owed names, `owe_answer`) runs
    on a worker while this thread closes the run, whose statements hold no GIL: ~2-3 ms, 5-10 %
    of a 200-row file's ingest (issue 13). When either fails, what the answer wrote goes."""
    parsed, report = computed.parsed, computed.report
    assert parsed is not None and report is not None
    rejects = list(computed.rejects)  # loading adds rows it could not apply: a copy, for a retry
    loaded = load.load_file(
        con, connection, run.id, record, parsed.table, parsed.lines, rejects, report,
        parsed.rows_rejected, now, count=not close, part=computed.part, read=parsed.read_of_rejects,
    )  # fmt: skip
    syncback_store.add_header(con, record.id, parsed.header)  # status files name their keys
    note_ignored(con, connection, run, record, parsed.unknown_columns)
    # read here, on the load's own connection: the results file's action column
    actions = results.RowActions(
        load.row_actions(con, connection, record.id, parsed.table, parsed.lines, loaded)
    )
    done = LoadDone(loaded, actions, rejects, None)
    answering = _answers.submit(answer, done) if answer is not None else None
    try:
        if close:  # the run's only file: its load closes the run, counting it
            files = [loaded.record] if loaded.record else None
            done.closed = closing.close(
                con, run, now, files=files, adding=loaded.counters(), connection_status=connection_status
            )
        if answering is not None:
            answering.result()
    except BaseException:
        if answering is not None:
            futures.wait([answering])  # what it wrote is there to discard
            discard_owed([done])
        raise
    return done


def note_ignored(
    con: duckdb.DuckDBPyConnection, connection: Connection, run: Run, record: FileRecord,
    ignored: Sequence[str],
) -> None:  # fmt: skip
    """A file's columns that were not read, as a remark on its run (none: no statement): a
    misnamed revenue column loads every row with no amount, and the run said nothing."""
    if ignored:
        shown = ", ".join(name[:NAME_CHARS] for name in ignored[:IGNORED_SHOWN])
        more = f" and {len(ignored) - IGNORED_SHOWN:,} more" if len(ignored) > IGNORED_SHOWN else ""
        label = schemas.get(connection.data_type).label
        text = f"{record.name}: columns not read (not in the {label} format, nor mapped): {shown}{more}"
        run_store.add_note(con, run.id, text)


IGNORED_SHOWN, NAME_CHARS = 10, 60  # a header of 400,000 names is named in a line, not a page


def answer_loaded(
    connection: Connection, run: Run, record: FileRecord, done: LoadDone, clock: Stopwatch, db: Database
) -> None:
    """The results file of a loaded batch, once its transaction committed: the one it owed
    (`owe_answer`, inside the transaction) published; one that could not be written (a full
    disk) is a line in the connection's history, not only in a log."""
    assert done.owed is not None, "the answer is written inside the load's transaction"
    clock.step = "write results"
    owed.publish(done.owed)
    _results_not_written(db, connection, run, record, done.answer_failed)
    extra = {"run_id": run.id, "connection_id": connection.id, "file": record.name}
    log.info("file loaded in %s", clock.laps, extra=extra)


def owe_answer(
    outbound: Path, connection: Connection, run: Run, record: FileRecord, computed: Computed,
    done: LoadDone, clock: Stopwatch,
) -> None:  # fmt: skip
    """The batch's answer, written inside its load transaction under owed names (`owed`):
    `answer_loaded` publishes it after the commit, a start after a crash (`owed.settle_left`)."""
    clock.lap("load")
    done.owed = []
    done.answer_failed = _write_answer(outbound, connection, run, record, computed, done, clock, done.owed)
    clock.step = "load (commit)"  # what fails next is the commit (a full disk)


def _write_answer(
    outbound: Path, connection: Connection, run: Run, record: FileRecord, computed: Computed,
    done: LoadDone, clock: Stopwatch, owing: list[Path],
) -> str | None:  # fmt: skip
    parsed, report = computed.parsed, computed.report
    assert parsed is not None and report is not None
    dtype = schemas.get(connection.data_type)
    clock.step = "write results"
    final = done.loaded.record
    if final is not None and final.state is FileState.REJECTED:  # no row of it applied (load.load_file)
        # the keys of rows refused after parsing too (an unknown action), from the parsed rows
        read = load.keys_of_rejects(done.rejects, dtype, parsed.read_of_rejects, (parsed.table, parsed.lines))
        return results.write_outcome(
            outbound, connection, run.id, record, FileState.REJECTED, rejects=done.rejects,
            key_columns=list(dtype.key_columns), report=report, message=final.message,
            read=read, header=parsed.header, ignored=parsed.unknown_columns, owing=owing,
        )  # fmt: skip
    return results.write_outcome(
        outbound, connection, run.id, record, FileState.LOADED, table=parsed.table,
        lines=parsed.lines, rejects=done.rejects, key_columns=list(dtype.key_columns), report=report,
        seconds=clock.laps, actions_created=done.loaded.actions_created,
        actions_changed=done.loaded.actions_changed, read=parsed.read_of_rejects,
        header=parsed.header, actions=done.actions, ignored=parsed.unknown_columns, owing=owing,
    )  # fmt: skip


def _results_not_written(
    db: Database, connection: Connection, run: Run, record: FileRecord, failed: str | None
) -> None:
    """A results file that could not be written (`failed`: why) is a line in the connection's history."""
    if failed:
        try:
            history.results_not_written(db, connection.id, run.id, record.name, failed)
        except Exception:  # a full disk may refuse that line too: the log keeps it
            log.exception("could not record a results file not written", extra={"run_id": run.id})


# A group loads files of fewer rows than this together (`load_many`); a bigger one is loaded
# by `load_in` in the same transaction (its statements cost little beside its rows).
MANY_MAX_ROWS = 10_000


def load_many(
    con: duckdb.DuckDBPyConnection,
    connection: Connection,
    batches: list[tuple[Run, FileRecord, Computed]],
    now: dt.datetime,
    *,
    close: bool = True,
) -> list[LoadDone]:
    """`load_in(close=True, connection_status=False)` for several small batches (fewer than
    MANY_MAX_ROWS rows each) of a connection whose loads only insert (`group.groupable`), in
    a fixed number of statements whatever their number: the same rows, actions, rejects,
    validation results, headers, ledger states and closed runs, file by file.
    `close=False`: the batches' runs stay open and their counters grow instead, one statement
    a run (the files of one pull run, `group.ingest_in_run`)."""
    dtype = schemas.get(connection.data_type)
    assert not load.merges_repeats(dtype, connection) and dtype.key != "action_modifications"
    parts = []
    for run, record, computed in batches:
        parsed = computed.parsed
        assert parsed is not None and computed.report is not None and parsed.table.num_rows < MANY_MAX_ROWS
        parts.append((run.id, record.id, parsed.table, parsed.lines))
    data_store.insert_many(con, dtype.key, connection.id, parts)
    file_ids = [record.id for _, record, _ in batches]
    created = action_store.create_for_files(con, dtype.key, file_ids=file_ids, lock_days=connection.lock_days)
    per_file = [p[2].num_rows if dtype.action_columns is not None else 0 for p in parts]
    if created != sum(per_file):  # one action per row, as create_for_file makes them
        raise RuntimeError(f"{created} actions for {sum(per_file)} rows")
    for (run, record, computed), rows in zip(batches, parts, strict=True):
        late.lock_loaded(con, connection, record.id, now, rows[2])  # no statement unless late
        note_ignored(con, connection, run, record, computed.parsed.unknown_columns if computed.parsed else ())
    run_groups.insert_rejects_of_files(
        con,
        [
            (run.id, record.id, c.rejects,
             *load.keys_of_rejects(c.rejects, dtype, c.parsed.read_of_rejects if c.parsed else None))
            for run, record, c in batches
        ],
    )  # fmt: skip
    reports = [c.report for _, _, c in batches]
    run_groups.insert_validations(
        con,
        [
            (run.id, record.id, r.success, len(r.critical_failures), len(r.warnings), r.to_json())
            for (run, record, _), r in zip(batches, reports, strict=True) if r is not None
        ],
    )  # fmt: skip
    counts = []
    for _, record, computed in batches:
        assert computed.parsed is not None
        rejected = load.rejected_rows(computed.rejects)
        accepted = computed.parsed.table.num_rows - (rejected - computed.parsed.rows_rejected)
        counts.append((record.id, accepted, rejected))
    records = run_groups.set_files_loaded(con, counts)
    syncback_store.add_headers(
        con, [(record.id, c.parsed.header if c.parsed else None) for _, record, c in batches]
    )
    actions = action_store.of_files_by_line(con, file_ids)
    added = [
        {"rows_accepted": accepted, "rows_rejected": rejected, "actions_created": made}
        for (_, accepted, rejected), made in zip(counts, per_file, strict=True)
    ]
    if close:
        closed = run_groups.finish_loaded(
            con, [(run.id, a) for (run, _, _), a in zip(batches, added, strict=True)], now
        )
    else:
        closed = {}
        per_run: dict[int, dict[str, int]] = {}
        for (run, _, _), a in zip(batches, added, strict=True):
            total = per_run.setdefault(run.id, dict.fromkeys(a, 0))
            for name, value in a.items():
                total[name] += value
        for run_id, total in per_run.items():
            run_store.add_counters(con, run_id, **total)
    done = []
    for (run, record, computed), (_, accepted, rejected), made in zip(batches, counts, per_file, strict=True):
        mine = actions.filter(pc.equal(actions.column("file_id"), record.id)).drop_columns(["file_id"])
        loaded = load.Loaded(accepted, rejected, made, records.get(record.id))
        done.append(LoadDone(loaded, results.RowActions(mine), list(computed.rejects), closed.get(run.id)))
    return done
