"""A small file's compute, started while its ledger entry commits.

A single-file ingest commits its run and its ledger entry before it processes anything, then
parses and validates, then loads. On a 200-row file the ledger transaction is ~9 ms of
database work, during which DuckDB holds no GIL, and the parse and validation ~10 ms of
mostly Python, one after the other (issue 13: small files one after another). So the compute
starts on a worker when the ledger transaction starts, and is taken once the entry is
committed, if it holds for that entry:

- It writes nothing: it reads the staged bytes and the keys the connection loaded before,
  which the ledger transaction does not change. The database's write mark it takes before
  computing (`commit.still_new`: loaded meanwhile?) counts the ledger's own commit: when
  that commit was the only one in between, the mark after it is kept instead, so the load
  does not look the keys up again (`Ahead.take`).
- It parses with the mapping the ledger transaction read for the connection's last file
  (`Ahead._mappings`); the entry's own mapping decides. When they differ, or the entry is a
  duplicate, or the ledger transaction failed, the compute is thrown away and the file takes
  its usual way (`Ingestor.compute_file` computes it again; a duplicate is answered). What
  holds reaches `compute_file` as the entry's `early`.
- Only a file under SMALL_BYTES that does not stream (`stream.will_stream`): a big file's
  progress bar follows its parse, which needs its run, and its parse is not worth doing twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pyarrow as pa

from connectbatch import schemas
from connectbatch.errors import ConnectBatchError
from connectbatch.models import Connection, Run
from connectbatch.pipeline import progress, staging, stream
from connectbatch.pipeline.commit import Stopwatch
from connectbatch.pipeline.compute import Computed, compute
from connectbatch.store import mappings as mapping_store

if TYPE_CHECKING:
    from connectbatch.pipeline.ingest import Ingestor

# A staged file under this size is computed ahead of its ledger commit.
SMALL_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Taken:
    """A compute that holds for its ledger entry (`staging.Entry.early`), with the seconds of
    its stages for the run's summary."""

    computed: Computed
    laps: dict[str, float]


class Early:
    """One file's compute under way on a worker (`Ahead.start`)."""

    def __init__(self, guess: mapping_store.SavedMapping | None, size: int) -> None:
        self.guess = guess  # the mapping it parses with
        self.size = size
        self.clock = Stopwatch()
        self.void = False  # what it computes will not be taken: look nothing up
        self.future: Future[Computed] | None = None


class Ahead:
    """Computes small files ahead of their ledger commit, for one `Ingestor`."""

    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor
        # Per connection, the mapping its last ledger transaction read (None: it has none).
        self._mappings: dict[int, mapping_store.SavedMapping | None] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def record(
        self, connection: Connection, staged: staging.Staged, ledger: Callable[[], tuple[Run, staging.Entry]]
    ) -> tuple[Run, staging.Entry]:
        """`ledger()` (the transaction that opens the run and records its file) with the
        file's compute under way beside it: the run, and the entry with what was computed
        (`early`) when it holds. Then a big staged copy's flush starts (`staging.stage`)."""
        early = self.start(connection, staged)
        run: Run | None = None
        entry: staging.Entry | None = None
        try:
            run, entry = ledger()
        finally:
            staging.flush_later(staged.sha256)
            taken = self.take(early, connection, run, entry)
        return run, replace(entry, early=taken) if taken is not None else entry

    def start(self, connection: Connection, staged: staging.Staged) -> Early | None:
        """The compute of `staged`, started; None when the file is not computed ahead (big,
        streamed, or of a connection whose mapping is not known yet and may have one)."""
        if staged.size >= SMALL_BYTES or stream.will_stream(connection, staged.size):
            return None
        try:
            guess = self._mappings[connection.id]
        except KeyError:
            if connection.column_map:
                return None
            guess = None  # no columns mapped: most likely no mapping at all
        early = Early(guess, staged.size)
        early.future = self._workers().submit(self._compute, early, connection, staged)
        return early

    def take(
        self, early: Early | None, connection: Connection, run: Run | None, entry: staging.Entry | None
    ) -> Taken | None:
        """What `early` computed, if it holds for the committed `entry` of `run` (both None:
        the ledger transaction failed); else None, and it is dropped. Never raises: a compute
        that broke is done again the usual way, which reports it."""
        if entry is not None and entry.mapping_read:
            with self._lock:
                self._mappings[connection.id] = entry.mapping
        if early is None:
            return None
        assert early.future is not None
        holds = (
            run is not None and entry is not None and entry.duplicate_message is None
            and entry.mapping_read and entry.mapping == early.guess
        )  # fmt: skip
        early.void = not holds
        # not started yet (every worker busy): computed on this thread instead
        if early.future.cancel() or not holds:
            return None  # one under way ends on its own
        after = self._ingestor.db.write_mark()  # the ledger's commit counted
        try:
            computed = early.future.result()
        except Exception:
            return None
        if computed.checked is not None and after == (computed.checked[0], computed.checked[1] + 1):
            computed = replace(computed, checked=after)  # no commit but the ledger's in between
        assert run is not None
        progress.start(run.id, early.size)  # as the parse reports it
        if computed.parsed is not None:
            progress.update(run.id, early.size, computed.parsed.rows_accepted)
        return Taken(computed, early.clock.laps)

    def _compute(self, early: Early, connection: Connection, staged: staging.Staged) -> Computed:
        """`Ingestor.compute_file` with the guessed mapping, on a worker."""
        ing = self._ingestor
        try:
            saved = staging.check_mapped_header(connection, staged, early.guess)
        except ConnectBatchError as exc:
            return Computed(refusal=str(exc))

        def already_loaded(dtype: schemas.DataType, table: pa.Table) -> list[str]:
            return [] if early.void else ing._existing_keys(connection, dtype, table)

        return compute(
            ing.settings, connection, staged.path, saved, ing.clock(), early.clock,
            already_loaded=already_loaded, mark=ing.db.write_mark(),
        )  # fmt: skip

    def _workers(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="connectbatch-ahead")
            return self._pool
