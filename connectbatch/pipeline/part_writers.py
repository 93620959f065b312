"""A streamed ingest's batches written as Parquet on several threads at once (issue 13).

Writing Parquet (dictionaries, levels, pages, compression) was most of a streamed 1M-row
ingest's time, all of it on the calling thread: pyarrow's writer encodes a row group's
columns one after the other, and the parser, on its own thread, sat waiting for it ~80 % of
the parse. So the batches are dealt out in turn to `n` files, each with its own
`ParquetWriter` on a thread of its own (the writer releases the GIL while it encodes), and the
load adopts each file as one part of the ingested file (`data.adopt_rows`).

- Order: batch i goes to file i % n, so a file's rows are interleaved by batch over its parts.
  Nothing reads a part in file order by position: every reader orders by `line` (the views,
  the results file, a held batch read back by `stream.whole`), and an action's id is its
  row's line plus the file's block (`actions._reserve`), whichever part the row is in.
- What a batch needs before it is written (its rows as the store keeps them, the columns
  validation reads copied out of the parser's buffers) is made on its writer's thread too
  (`make`): on the parser's thread it made that thread, not the writer, the one everything
  waited for.
- Memory: a writer has at most one batch in hand; the caller waits for a writer's previous
  batch before dealing it the next, so at most `n` batches are being written at once.
- Failure: the first error of any writer is raised to the caller (at its next batch for
  that writer, or at `finish`); `abort` waits for every writer and closes what is open, so
  no thread outlives the ingest, and the caller deletes the files (`Streamed.discard`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Generic, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from connectbatch.store.parts import ROW_GROUP_ROWS

__all__ = ["PartWriters"]

T = TypeVar("T")
Make = Callable[[], tuple[pa.Table, T]]  # a batch's rows as stored, and what else it gives


class PartWriters(Generic[T]):
    """Batches of one streamed file written to `paths` in turn (module docstring)."""

    def __init__(self, paths: list[Path], options: Callable[[pa.Table], dict[str, object]]) -> None:
        self._paths = paths
        self._options_for = options  # the writers' keywords, from the first batch
        self._options: dict[str, object] = {}
        self._schema: pa.Schema | None = None
        self._first_done = threading.Event()  # the first batch fixed the schema and options
        self._first_error: BaseException | None = None
        self._writers: list[pq.ParquetWriter | None] = [None] * len(paths)
        self._pending: list[Future[T] | None] = [None] * len(paths)
        self._rows = [0] * len(paths)
        self._dealt = 0
        self._pool = (
            ThreadPoolExecutor(len(paths), thread_name_prefix="cb-part-write") if len(paths) > 1 else None
        )

    @property
    def rows(self) -> int:
        """Rows dealt to the writers so far."""
        return sum(self._rows)

    def write(self, rows: int, make: Make[T]) -> Future[T]:
        """Deal a batch of `rows` rows to the next writer, which calls `make` and writes the
        table it gives; waits only for that writer's previous batch. The future gives what
        `make` gave beside the table (or raises what the batch raised)."""
        k = self._dealt % len(self._paths)
        first = self._dealt == 0
        self._dealt += 1
        self._wait(k)
        self._rows[k] += rows
        if self._pool is not None:
            future = self._pending[k] = self._pool.submit(self._put, k, make, first)
            return future
        done: Future[T] = Future()
        done.set_result(self._put(k, make, first))
        return done

    def finish(self) -> list[tuple[Path, int]]:
        """Every batch written and every file closed: the files written, with their rows
        (a writer that got no batch wrote no file). Raises the first writer's error."""
        try:
            for k in range(len(self._paths)):
                self._wait(k)
            for writer in self._writers:
                if writer is not None:
                    writer.close()
        except BaseException:
            self.abort()
            raise
        self._shutdown()
        return [
            (p, n) for p, w, n in zip(self._paths, self._writers, self._rows, strict=True) if w is not None
        ]

    def abort(self) -> None:
        """Wait for the writers (their errors dropped: the caller is already failing) and
        close the files they opened; the caller deletes them."""
        self._first_done.set()  # a writer still waiting for the first batch gives up
        for k, pending in enumerate(self._pending):
            self._pending[k] = None
            if pending is not None:
                pending.exception()
        for writer in self._writers:
            if writer is not None:
                try:
                    writer.close()
                except Exception:  # a broken writer: the caller deletes its file anyway
                    continue
        self._shutdown()

    def _put(self, k: int, make: Make[T], first: bool) -> T:
        try:
            staged, given = make()
            if first:
                self._schema, self._options = staged.schema, self._options_for(staged)
        except BaseException as exc:
            if first:
                self._first_error = exc
            raise
        finally:
            if first:
                self._first_done.set()
        if not first:
            self._first_done.wait()
            if self._schema is None:  # the first batch failed: its error is the file's
                raise self._first_error or RuntimeError("the first batch of the file was not written")
            if staged.schema != self._schema:
                staged = staged.cast(self._schema)
        writer = self._writers[k]
        if writer is None:
            assert self._schema is not None
            writer = self._writers[k] = pq.ParquetWriter(self._paths[k], self._schema, **self._options)
        writer.write_table(staged, row_group_size=ROW_GROUP_ROWS)
        return given

    def _wait(self, k: int) -> None:
        pending = self._pending[k]
        if pending is not None:
            self._pending[k] = None
            pending.result()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
