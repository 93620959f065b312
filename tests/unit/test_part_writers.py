"""The writers of a streamed file's parts (pipeline/part_writers.py): batches dealt in turn to
files written on threads of their own, every row in exactly one file, the first batch's
schema for all of them, and an error that stops the file with nothing left running."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectbatch.pipeline.part_writers import PartWriters


def _batch(first: int, rows: int) -> pa.Table:
    return pa.table({"line": pa.array(range(first, first + rows), pa.int64())})


def _writers(tmp_path: Path, n: int) -> PartWriters[int]:
    return PartWriters([tmp_path / f"w{k}.parquet" for k in range(n)], lambda staged: {"compression": "none"})


def _write(writers: PartWriters[int], table: pa.Table) -> int:
    return writers.write(table.num_rows, lambda: (table, threading.get_ident())).result()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_batches_are_dealt_in_turn_and_every_row_is_written_once(tmp_path: Path, n: int) -> None:
    writers = _writers(tmp_path, n)
    futures = [writers.write(10, lambda i=i: (_batch(10 * i, 10), i)) for i in range(7)]
    assert writers.rows == 70
    written = writers.finish()
    assert [f.result() for f in futures] == list(range(7))  # what each make gave, in order
    assert [p.name for p, _ in written] == [f"w{k}.parquet" for k in range(min(n, 7))]
    assert sum(rows for _, rows in written) == 70
    stored = pa.concat_tables([pq.read_table(p) for p, _ in written]).sort_by("line")
    assert stored.column("line").to_pylist() == list(range(70))
    # file k holds batches k, k + n, ...
    assert pq.read_table(written[0][0]).column("line").to_pylist()[:10] == list(range(10))
    if n > 1:
        assert pq.read_table(written[1][0]).column("line").to_pylist()[:10] == list(range(10, 20))


def test_two_writers_write_at_the_same_time_off_the_calling_thread(tmp_path: Path) -> None:
    writers = _writers(tmp_path, 2)
    both = threading.Barrier(2, timeout=10)  # broken (an error) unless both batches run at once

    def make(i: int) -> tuple[pa.Table, int]:
        both.wait()
        return _batch(i, 1), threading.get_ident()

    futures = [writers.write(1, lambda i=i: make(i)) for i in range(2)]
    writers.finish()
    idents = {f.result() for f in futures}
    assert len(idents) == 2 and threading.get_ident() not in idents


def test_every_file_takes_the_first_batchs_schema(tmp_path: Path) -> None:
    writers = _writers(tmp_path, 2)
    _write(writers, _batch(0, 3))
    _write(writers, pa.table({"line": pa.array([3, 4], pa.int32())}))  # cast to int64
    written = writers.finish()
    assert [pq.read_schema(p).field("line").type for p, _ in written] == [pa.int64(), pa.int64()]


def test_a_failing_batch_stops_the_file_and_abort_leaves_nothing_running(tmp_path: Path) -> None:
    writers = _writers(tmp_path, 2)

    def broken() -> tuple[pa.Table, int]:
        raise ValueError("batch 0 is broken")

    writers.write(1, broken)
    writers.write(1, lambda: (_batch(1, 1), 0))  # writer 1 waits for the first batch, then gives up
    with pytest.raises(ValueError, match="batch 0 is broken"):
        writers.write(1, lambda: (_batch(2, 1), 0))  # writer 0 again: its error comes out here
    writers.abort()
    assert not [t for t in threading.enumerate() if t.name.startswith("cb-part-write")]


def test_finish_raises_a_writers_error_after_closing_the_others(tmp_path: Path) -> None:
    writers = _writers(tmp_path, 2)
    _write(writers, _batch(0, 2))

    def broken() -> tuple[pa.Table, int]:
        raise OSError("disk full")

    writers.write(1, broken)
    with pytest.raises(OSError, match="disk full"):
        writers.finish()
    assert not [t for t in threading.enumerate() if t.name.startswith("cb-part-write")]
