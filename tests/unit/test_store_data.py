"""`store/data.insert_rows` puts a big table in one row group per statement (issue 13: peak
memory): every row arrives once, in order, with its line, run, file and connection, and the
caller's transaction still makes the whole table one unit (a failure keeps none of it)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from connectbatch.store import Database
from connectbatch.store import data as data_store


def _table(n: int) -> tuple[pa.Table, pa.Array]:
    table = pa.table(
        {
            "CallSessionId": pa.array([f"s{i}" for i in range(n)], pa.string()),
            "CallDuration": pa.array([i * 10 if i % 4 else None for i in range(n)], pa.int64()),
        }
    )
    return table, pa.array([i + 2 for i in range(n)], pa.int32())


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 7, 9])
def test_every_row_once_in_order_in_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    monkeypatch.setattr(data_store, "ROW_GROUP_ROWS", 3)
    table, lines = _table(rows)
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        assert data_store.insert_rows(
            con, "call_conversions", run_id=5, file_id=6, connection_id=7, table=table, lines=lines
        ) == rows  # fmt: skip
    with db.connect() as con:
        stored = con.execute(
            'SELECT run_id, file_id, connection_id, line, "CallSessionId", "CallDuration" '
            "FROM data_call_conversions ORDER BY rowid"
        ).fetchall()
    assert stored == [(5, 6, 7, i + 2, f"s{i}", i * 10 if i % 4 else None) for i in range(rows)]


def test_a_failure_after_some_slices_keeps_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_store, "ROW_GROUP_ROWS", 2)
    table, lines = _table(6)
    db = Database(tmp_path / "cb.duckdb")
    with pytest.raises(RuntimeError), db.transaction() as con:
        data_store.insert_rows(
            con, "call_conversions", run_id=1, file_id=1, connection_id=1, table=table, lines=lines
        )  # fmt: skip
        raise RuntimeError("the load broke after the rows")
    with db.connect() as con:
        assert con.execute("SELECT count(*) FROM data_call_conversions").fetchone() == (0,)


class _Watched:
    """A cursor that records which of its methods were called (and lets DuckDB find an
    Arrow table read by name in its caller's frame, one up from `called`)."""

    def __init__(self, cursor: object) -> None:
        cursor.execute("SET python_scan_all_frames = true")  # type: ignore[attr-defined]
        self._cursor = cursor
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._cursor, name)
        if not callable(attr):
            return attr

        def called(*args: object, **kwargs: object) -> object:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return called


def test_rows_and_their_keys_go_in_without_registering_a_view(tmp_path: Path) -> None:
    """The rows are read by name (store/db.py: a register and an unregister cost a 200-row
    file ~1.4 ms, its INSERT over the view ~0.8 ms more, issue 13), and both the rows and
    their keys are stored."""
    table, lines = _table(5)
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        watched = _Watched(con)
        data_store.insert_rows(
            watched, "call_conversions", run_id=1, file_id=2, connection_id=3, table=table, lines=lines
        )  # type: ignore[arg-type]  # fmt: skip
    assert "register" not in watched.calls and "unregister" not in watched.calls
    with db.connect() as con:
        assert con.execute("SELECT count(*) FROM data_call_conversions").fetchone() == (5,)
        assert con.execute("SELECT count(*), min(file_id) FROM data_keys").fetchone() == (5, 2)
