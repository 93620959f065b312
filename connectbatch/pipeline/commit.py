"""The database half of a batch that passed validation: its load inside a transaction the
caller owns (a file's own, or a group's: `pipeline/group.py`), and its results file once that
transaction has committed. `Ingestor.commit` and group commit share it, so a file loaded in a
group is stored and answered exactly as one loaded alone."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from connectbatch import schemas
from connectbatch.models import Connection, FileRecord, FileState, Run
from connectbatch.parser.api import Reject
from connectbatch.pipeline import closing, load, results
from connectbatch.pipeline.compute import Computed
from connectbatch.store import actions as action_store
from connectbatch.store import syncback as syncback_store

log = logging.getLogger("connectbatch.pipeline.ingest")


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


@dataclass
class LoadDone:
    """What a load transaction leaves for the results file: the load, the actions per line,
    the rejects (the parser's and the load's) and, for a run it closed, the run."""

    loaded: load.Loaded
    actions: results.RowActions
    rejects: list[Reject]
    closed: Run | None


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
) -> LoadDone:
    """A batch that passed validation, loaded inside the caller's transaction: rows, rejects,
    validation result, actions, header, ledger state. With `close` (the run's only file) the
    same transaction closes the run, and with `connection_status` the connection's status
    follows it (a group sets it once, after its last run)."""
    parsed, report = computed.parsed, computed.report
    assert parsed is not None and report is not None
    rejects = list(computed.rejects)  # loading adds rows it could not apply: a copy, for a retry
    loaded = load.load_file(
        con, connection, run.id, record, parsed.table, parsed.lines, rejects, report,
        parsed.rows_rejected, now, count=not close,
    )  # fmt: skip
    syncback_store.add_header(con, record.id, parsed.header)  # status files name their keys
    # read here, on the load's own connection: the results file's action column
    actions = results.RowActions(action_store.of_file_by_line(con, record.id))
    closed = None
    if close:  # the run's only file: its load closes the run, counting it
        files = [loaded.record] if loaded.record else None
        closed = closing.close(
            con, run, now, files=files, adding=loaded.counters(), connection_status=connection_status
        )
    return LoadDone(loaded, actions, rejects, closed)


def answer_loaded(
    outbound: Path,
    connection: Connection,
    run: Run,
    record: FileRecord,
    computed: Computed,
    done: LoadDone,
    clock: Stopwatch,
) -> None:
    """The results file of a loaded batch, once its transaction committed."""
    parsed, report = computed.parsed, computed.report
    assert parsed is not None and report is not None
    dtype = schemas.get(connection.data_type)
    clock.step = "write results"
    results.write_outcome(
        outbound, connection, run.id, record, FileState.LOADED, table=parsed.table,
        lines=parsed.lines, rejects=done.rejects, key_columns=list(dtype.key_columns), report=report,
        seconds=clock.laps, actions_created=done.loaded.actions_created, reject_keys=parsed.reject_keys,
        header=parsed.header, actions=done.actions,
    )  # fmt: skip
    extra = {"run_id": run.id, "connection_id": connection.id, "file": record.name}
    log.info("file loaded in %s", clock.laps, extra=extra)
