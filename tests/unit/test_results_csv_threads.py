"""A results file of several slices is made on several threads (`results_csv.write`) with the
very bytes one thread writes: rows in line order, escaped, the header once."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest

from connectbatch.pipeline import results_csv

NAMES = ["Line", "CallSessionId", "Status", "Reason"]


def _table(rows: int) -> pa.Table:
    lines = np.arange(2, rows + 2)
    np.random.default_rng(7).shuffle(lines)
    keys = [
        f"=HYPERLINK({i})" if i % 97 == 0 else (f'a,"b{i}' if i % 31 == 0 else f"cs-{i}") for i in range(rows)
    ]
    return pa.table(
        {
            "Line": pa.array(lines, pa.int64()),
            "CallSessionId": pa.array(keys),
            "Status": pa.array(["ACCEPTED"] * rows),
            "Reason": pa.array([None if i % 5 else "late" for i in range(rows)], pa.string()),
        }
    )


def _written(table: pa.Table, threads: str, monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("CONNECTBATCH_PARSE_THREADS", threads)
    out = io.BytesIO()
    results_csv.write(table, results_csv.line_order(table), NAMES, out)
    return out.getvalue()


@pytest.mark.parametrize("rows", [0, 1, 99, 100, 101, 1_234])
def test_threads_write_what_one_thread_writes(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results_csv, "WRITE_ROWS", 100)
    table = _table(rows)
    one = _written(table, "1", monkeypatch)
    assert one == _written(table, "3", monkeypatch)
    text = one.decode()
    assert text.splitlines()[0] == '"Line","CallSessionId","Status","Reason"'
    assert len(text.splitlines()) == rows + 1
    if rows:
        assert [int(line.split(",")[0]) for line in text.splitlines()[1:]] == list(range(2, rows + 2))
        assert "'=HYPERLINK(0)" in text
