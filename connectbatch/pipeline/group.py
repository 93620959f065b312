"""Group commit: files waiting together (a CLI `ingest` of several files, a backlog) ingested
with one commit for all their ledger entries and one for all their loads.

Why: a small file's ingest is mostly the fixed cost of DuckDB statements and commits (issue
13: ~2 ms a commit, which fsyncs the log, ~1 ms a statement). A group shares them.

Each file keeps what `Ingestor.ingest` gives it alone: its own run, ledger row, rejects,
validation result, actions and results file, and the rules hold as they do for one file:
1. every file is recorded (sha256, size, source) before anything parses it: the group's ledger
   transaction commits before the first parse;
2. each run is all or nothing: the loads commit together or not at all; if the group's
   transaction fails (or finds records loaded meanwhile), each file loads in its own;
3. re-delivery does not duplicate: a file repeating an earlier one's bytes is ingested alone
   after the group (a duplicate), one repeating its keys is computed again after it (the
   "already loaded" check then sees them), exactly as one after another would.
Files that do not load (refused, held, failed) take their own transactions, as alone. Loads
that depend on the previous file's (`supersede` mode, catalogs, modifications) are not grouped.

The files a pull run fetched (`transfer/pull/collect.py`) go the same way inside that run
(`ingest_in_run`), each file's outcome as `Ingestor.ingest_file` would leave it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.models import Connection, FileRecord, Run
from connectbatch.pipeline import commit, failures, load, progress, staging, stream
from connectbatch.pipeline.commit import MANY_MAX_ROWS, LoadDone, Stopwatch, answer_loaded, load_in, load_many
from connectbatch.pipeline.compute import Computed, recheck_loaded
from connectbatch.pipeline.ingest import Ingestor
from connectbatch.pipeline.staging import Received, Staged
from connectbatch.schemas import record_key
from connectbatch.store import connections as connection_store
from connectbatch.store import data as data_store
from connectbatch.store import liveness, run_groups

log = logging.getLogger("connectbatch.pipeline.group")

# The most rows `load_many` inserts in one statement (a group's small files, in chunks; well
# under store.data.PARQUET_MIN_ROWS, which makes a Parquet part of one file's rows).
MANY_ROWS_AT_ONCE = 50_000

# At most this many files, or this many bytes (at least one file), wait to go in together:
# push uploads of one connection (`transfer/push/gateway.py`), the files a pull fetches.
GROUP_MAX_FILES = 100
GROUP_MAX_BYTES = 64 * 1024 * 1024


def groupable(connection: Connection) -> bool:
    """Whether a connection's files may load in one transaction: only where a load inserts
    new rows and their actions, whatever the file before it loaded."""
    dtype = schemas.get(connection.data_type)
    return dtype.key != "action_modifications" and not load.merges_repeats(dtype, connection)


@dataclass
class _Waiting:
    """One file of the group on its way."""

    index: int
    received: Received
    staged: Staged
    run: Run | None = None
    entry: staging.Entry | None = None
    computed: Computed | None = None
    clock: Stopwatch = field(default_factory=Stopwatch)
    done: LoadDone | None = None
    keys: set[str] = field(default_factory=set)  # its keys, where repeats are refused


def ingest_group(
    ingestor: Ingestor, connection: Connection, received: list[Received], trigger: str
) -> list[Run]:
    """The runs of `received`, in order, as `Ingestor.ingest` one after another gives them."""
    if len(received) < 2 or not groupable(connection):
        return [ingestor.ingest(connection, r, trigger) for r in received]
    with ingestor.db.held():
        group = _Group(ingestor, connection, trigger)
        group.run(received)
        return [group.runs[i] for i in range(len(received))]


def ingest_in_run(
    ingestor: Ingestor, run: Run, connection: Connection, received: list[Received]
) -> list[FileRecord]:
    """The files one run fetched, in order, as `Ingestor.ingest_file` one after another in
    that run leaves them (their ledger records), with group commit. The run stays open: its
    caller closes it (`Ingestor.finish_run`), or fails it when this raises."""
    if len(received) < 2 or not groupable(connection):
        return [ingestor.ingest_file(run, connection, r) for r in received]
    with ingestor.db.held():
        group = _Group(ingestor, connection, run.trigger, shared=run)
        group.run(received)
        return [group.records[i] for i in range(len(received))]


Worked = tuple[Run, Received, Staged, FileRecord, Computed]  # a recorded file computed elsewhere


def commit_in_run(
    ingestor: Ingestor, run: Run, connection: Connection, files: list[Worked]
) -> list[FileRecord]:
    """Files of the open `run`, computed without the database (distributed mode: by workers),
    committed as `Ingestor.commit` one after another would, with group commit and one
    "already loaded" check for all (the caller keeps their bytes distinct). Their records;
    the run stays open."""
    group = _committed(ingestor, connection, files, run)
    return [group.records[i] for i in range(len(files))]


def commit_runs(ingestor: Ingestor, connection: Connection, files: list[Worked]) -> list[Run]:
    """`commit_in_run` for files each the only file of its own open run (distributed push
    uploads), each run closed as `Ingestor.ingest` closes it: the closed runs."""
    group = _committed(ingestor, connection, files, None)
    return [group.runs[i] for i in range(len(files))]


def _committed(ingestor: Ingestor, connection: Connection, files: list[Worked], shared: Run | None) -> _Group:
    with ingestor.db.held():
        group = _Group(ingestor, connection, (shared or files[0][0]).trigger, shared=shared)
        dtype = schemas.get(connection.data_type)
        waiting = []
        for i, (run, received, staged, record, computed) in enumerate(files):
            w = _Waiting(i, received, staged, run, staging.Entry(record, mapping_read=True), computed)
            if computed.parsed is not None and load.refuses_repeats(dtype, connection):
                keys = record_key.texts(dtype, computed.parsed.table).to_pylist()
                w.keys = {str(k) for k in keys if k is not None}
            waiting.append(w)
        group._commit_computed(waiting)
        return group


class _Group:
    """One group's way. Each file its own run, or with `shared` all the files in that open
    run (which `_Group` then never closes)."""

    def __init__(
        self, ingestor: Ingestor, connection: Connection, trigger: str, shared: Run | None = None
    ) -> None:
        self.ingestor = ingestor
        self.connection = connection
        self.trigger = trigger
        self.shared = shared
        self.runs: dict[int, Run] = {}  # by index: the closed run of each file (not `shared`)
        self.records: dict[int, FileRecord] = {}  # by index: each file's record (`shared`)

    def run(self, received: list[Received]) -> None:
        waiting, alone = self._stage(received)
        if waiting:
            self._record(waiting)  # nothing is parsed before the ledger commits
            try:
                self._process(waiting)
            except BaseException as exc:  # never leave a run In Progress behind a live process
                if self.shared is None:  # (a shared run is its caller's to fail)
                    for w in waiting:
                        if w.run is not None and w.index not in self.runs:
                            self.ingestor.fail_run(w.run, f"stopped: {type(exc).__name__}: {exc}")
                raise
        for index in alone:  # after the group: the ledger now shows what the group loaded
            if self.shared is None:
                self.runs[index] = self.ingestor.ingest(self.connection, received[index], self.trigger)
            else:
                self.records[index] = self.ingestor.ingest_file(self.shared, self.connection, received[index])

    def _stage(self, received: list[Received]) -> tuple[list[_Waiting], list[int]]:
        """Stage every file; one that cannot be staged (it fails alone, recording why) or that
        repeats the bytes of an earlier one goes alone after the group."""
        waiting: list[_Waiting] = []
        alone: list[int] = []
        seen: set[str] = set()
        for i, r in enumerate(received):
            try:
                staged = staging.stage(self.ingestor.settings.staging, r.path, move=r.disposable)
            except OSError:
                alone.append(i)
                continue
            if staged.sha256 in seen:  # staging it again alone finds the copy under its hash
                alone.append(i)
                continue
            seen.add(staged.sha256)
            waiting.append(_Waiting(i, r, staged))
        return waiting, alone

    def _record(self, waiting: list[_Waiting]) -> None:
        """Open every file's run and record it in the ledger, in one transaction and a fixed
        number of statements."""
        ing = self.ingestor
        with ing.db.transaction() as con:
            if self.shared is not None:
                runs = [self.shared] * len(waiting)
            else:
                first = ing.open_run(con, self.connection, self.trigger)  # the in-progress check, the status
                others = run_groups.create_many(
                    con, self.connection.id, self.trigger, liveness.me(), len(waiting) - 1
                )
                runs = [first, *others]
            files = [(w.received, w.staged) for w in waiting]
            entries = staging.record_group(con, runs, self.connection, files)
        staging.flush_later(*(w.staged.sha256 for w in waiting))  # after the ledger's commit (stage)
        for w, run, entry in zip(waiting, runs, entries, strict=True):
            w.run, w.entry = run, entry

    def _process(self, waiting: list[_Waiting]) -> None:
        """Compute every file, then commit them (`_commit_computed`)."""
        ing = self.ingestor
        computed: list[_Waiting] = []
        for w in waiting:
            assert w.run is not None and w.entry is not None
            # a duplicate (the ledger says so) is answered alone; a big file streams alone
            if w.entry.duplicate_message is not None or w.staged.size >= stream.STREAM_MIN_BYTES:
                self._alone(w)
                continue
            try:
                w.computed = ing.compute_file(
                    w.run, self.connection, w.staged, w.clock, w.entry, already_loaded=_keys_of(w)
                )
            except Exception as exc:  # the file and its run end Failed, saying where (as alone)
                log.exception("ingest failed", extra={"run_id": w.run.id, "file": w.received.name})
                self._failed(w, exc)
                continue
            finally:
                progress.forget(w.run.id)
            computed.append(w)
        self._commit_computed(computed)

    def _commit_computed(self, computed: list[_Waiting]) -> None:
        """Ask the database once which of all the computed files' keys are loaded already
        (each verdict checked again with its own: `recheck_loaded`), then load those that
        pass together; the others go their way alone. A file repeating keys an earlier one
        of the group loads has its verdict checked again once the group loaded."""
        ing = self.ingestor
        loaded = self._loaded_keys(computed)
        loading: list[_Waiting] = []
        later: list[_Waiting] = []
        pending: set[str] = set()  # keys the group's loads will add
        for w in computed:
            assert w.computed is not None
            if not pending.isdisjoint(w.keys):  # computed again once the earlier one loaded
                later.append(w)
                continue
            already = sorted(w.keys & loaded)
            if already:
                w.computed = recheck_loaded(ing.settings, self.connection, w.computed, already, ing.clock())
            if _loads(w.computed):
                loading.append(w)
                pending |= w.keys
            else:  # refused or held for review: its own transactions, as alone
                self._alone(w)
        failed_together = not self._load_together(loading)
        for w in loading:
            if failed_together:
                self._alone(w)  # loaded alone from what was computed: one bad file fails alone
            else:
                self._answer(w)
        for w in later:  # the group's loads are in: the database now answers for its keys
            assert w.computed is not None
            already = sorted(self._loaded_keys([w]))
            if already:
                w.computed = recheck_loaded(ing.settings, self.connection, w.computed, already, ing.clock())
            self._alone(w)

    def _loaded_keys(self, waiting: list[_Waiting], con: duckdb.DuckDBPyConnection | None = None) -> set[str]:
        """Which keys of the files the connection has loaded: one query (`con`: in the load's)."""
        keys = sorted(set().union(*(w.keys for w in waiting)))
        if not keys:
            return set()
        with contextlib.nullcontext(con) if con is not None else self.ingestor.db.connect() as c:
            return set(data_store.loaded_identities(c, self.connection.data_type, self.connection.id, keys))

    def _load_together(self, loading: list[_Waiting]) -> bool:
        """Load every batch in one transaction, each closing its run; False if it rolled back."""
        if not loading:
            return True
        ing = self.ingestor
        try:
            for w in loading:  # as `Ingestor.commit`: only staged copies already on disk
                staging.settle(w.staged.sha256)
            commit.ready_for_parts(ing.db, self.connection, [w.computed for w in loading if w.computed])
            with ing.db.transaction() as con:
                if self._loaded_keys(loading, con):  # loaded meanwhile: each judged alone again
                    raise commit.LoadedMeanwhile([])
                small: list[_Waiting] = []
                small_rows = 0
                for w in loading:
                    assert w.run is not None and w.entry is not None and w.computed is not None
                    assert w.computed.parsed is not None
                    w.clock.step = "load (commit)"
                    rows = w.computed.parsed.table.num_rows
                    if rows < MANY_MAX_ROWS:  # loaded with the other small ones, statement by statement
                        if small_rows + rows >= MANY_ROWS_AT_ONCE:
                            self._load_small(con, small)
                            small, small_rows = [], 0
                        small.append(w)
                        small_rows += rows
                        continue
                    w.done = load_in(
                        con, self.connection, w.run, w.entry.record, w.computed, ing.clock(),
                        close=self.shared is None, connection_status=False,
                    )  # fmt: skip
                self._load_small(con, small)
                if self.shared is None:  # every run closed: the connection's status, once
                    connection_store.set_completed_unless_held(con, self.connection.id, ing.clock())
                for w in loading:  # each answer owed before the commit, as alone
                    assert w.done is not None and w.computed is not None and w.run and w.entry
                    commit.owe_answer(ing.settings.outbound, self.connection, w.run, w.entry.record,
                                      w.computed, w.done, w.clock)  # fmt: skip
        except Exception as exc:
            commit.discard_owed(w.done for w in loading)
            if not isinstance(exc, commit.LoadedMeanwhile):
                log.exception("the group's load failed", extra={"connection_id": self.connection.id})
            for w in loading:
                w.done = None
            return False
        return True

    def _load_small(self, con: duckdb.DuckDBPyConnection, small: list[_Waiting]) -> None:
        """`load_many` for these small batches: each statement once for all of them."""
        if not small:
            return
        batches = []
        for w in small:
            assert w.run is not None and w.entry is not None and w.computed is not None
            batches.append((w.run, w.entry.record, w.computed))
        close = self.shared is None
        loads = load_many(con, self.connection, batches, self.ingestor.clock(), close=close)
        for w, done in zip(small, loads, strict=True):
            w.done = done

    def _answer(self, w: _Waiting) -> None:
        """A file the group loaded: its results file, and its run announced."""
        assert w.run is not None and w.entry is not None and w.computed is not None and w.done is not None
        closed = w.done.closed
        try:
            ing = self.ingestor
            answer_loaded(self.connection, w.run, w.entry.record, w.done, w.clock, ing.db)
        except Exception as exc:  # as alone: loaded, but the run fails saying where
            log.exception("writing results failed", extra={"run_id": w.run.id})
            self._failed(w, exc)
            return
        if self.shared is not None:
            self.records[w.index] = w.done.loaded.record or self.ingestor._file(w.entry.record.id)
            return
        assert closed is not None
        self.ingestor._announce(closed)
        self.runs[w.index] = closed

    def _failed(self, w: _Waiting, exc: Exception) -> None:
        """A file that broke at its clock's step: it fails (its own run with it, and a shared
        run as `Ingestor.ingest_file` fails it), saying where."""
        assert w.run is not None and w.entry is not None
        message = failures.step_failed(w.clock.step, exc)
        failed = self.ingestor._file_failed(w.run, self.connection, w.received, w.entry.record, message)
        if self.shared is not None:
            self.records[w.index] = failed
        else:
            self.runs[w.index] = self.ingestor._finish_after_failure(w.run)

    def _alone(self, w: _Waiting) -> None:
        """The rest of `w`'s way as `Ingestor.ingest` takes a recorded file: from what was
        computed, if anything, else from its staged bytes; its run closed."""
        assert w.run is not None and w.entry is not None
        ing, run, entry, computed = self.ingestor, w.run, w.entry, w.computed
        if self.shared is not None:
            self.records[w.index] = ing._recorded(
                run, self.connection, w.received, w.staged, entry, None, computed
            )
            return
        self.runs[w.index] = ing._run_alone(
            run, lambda end: ing._recorded(run, self.connection, w.received, w.staged, entry, end, computed)
        )


def _keys_of(w: _Waiting) -> Callable[[schemas.DataType, pa.Table], list[str]]:
    """An "already loaded" check that only notes the keys of `w` (the group asks the database
    for all its files at once, after computing them) and finds none yet."""

    def note(dtype: schemas.DataType, table: pa.Table) -> list[str]:
        w.keys = {str(k) for k in record_key.texts(dtype, table).to_pylist() if k is not None}
        return []

    return note


def _loads(computed: Computed) -> bool:
    """Whether a computed batch goes to the load (not refused, not held for review)."""
    return (
        computed.refusal is None
        and computed.parsed is not None
        and computed.report is not None
        and computed.report.success
    )
