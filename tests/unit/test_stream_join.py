"""A streamed ingest joins its batches' kept columns into one chunk each (`stream._one_chunk`)
on the parse's threads: the same table as on one thread, each column one chunk, and the
batches' list emptied (their copies freed as each column is joined)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from connectbatch.pipeline import stream


def _batches() -> list[pa.Table]:
    return [
        pa.table(
            {
                "CallSessionId": pa.array([f"s{b}-{i}" for i in range(50)], pa.string()),
                "CallDuration": pa.array([None if i % 7 == 0 else i * b for i in range(50)], pa.int64()),
                "Country": pa.array(["US", None, "GB", "FR", "DE"] * 10, pa.string()),
            }
        )
        for b in range(9)
    ]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_the_join_is_the_same_on_any_number_of_threads(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    expected = pa.concat_tables(_batches()).combine_chunks()
    monkeypatch.setattr(stream, "parse_threads", lambda: threads)
    batches = _batches()
    joined = stream._one_chunk(batches)
    assert batches == []
    assert joined.schema == expected.schema
    assert all(column.num_chunks == 1 for column in joined.columns)
    assert joined.equals(expected)
