"""The "already loaded" check: the key index (store/keys.py) names the files that may hold a
key and only their stored rows are compared. A small file's keys go as one bound list (no
register/unregister: issue 13), a large file's as an Arrow table; both answer alike, for rows
in the table and in Parquet parts, and for rows stored before the index existed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectbatch.store import Database, keys
from connectbatch.store import data as data_store

KEYS = ["a", "b'q", "d\x00"]  # connection 7's; connection 8 holds "c"


def _store(con: duckdb.DuckDBPyConnection, file_id: int, connection_id: int, keys: list[str]) -> None:
    table = pa.table({"CallSessionId": pa.array(keys, pa.string())})
    lines = pa.array(range(2, 2 + len(keys)), pa.int64())
    data_store.insert_rows(
        con,
        "call_conversions",
        run_id=1,
        file_id=file_id,
        connection_id=connection_id,
        table=table,
        lines=lines,
    )


def _asked(con: duckdb.DuckDBPyConnection) -> list[str]:
    asked = pa.array(["a", "b'q", "c", "d\x00", "e", None, "a"])
    return sorted(data_store.existing_keys(con, "call_conversions", 7, pa.table({"CallSessionId": asked})))


@pytest.mark.parametrize("small_list", [data_store.SMALL_LIST, 0])
@pytest.mark.parametrize("parquet_min_rows", [data_store.PARQUET_MIN_ROWS, 1])
def test_the_keys_a_connection_holds_whatever_their_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_list: int, parquet_min_rows: int
) -> None:
    monkeypatch.setattr(data_store, "SMALL_LIST", small_list)
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", parquet_min_rows)
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        _store(con, 1, 7, KEYS)
        _store(con, 2, 8, ["c"])
        found = _asked(con)  # in the load's own transaction, as a quarantine release asks
        none = data_store.existing_keys(
            con, "call_conversions", 7, pa.table({"CallSessionId": pa.array([], pa.string())})
        )
    assert found == KEYS  # connection 8's key and unknown ones are not
    assert none == []
    with db.connect() as con:
        assert _asked(con) == KEYS


def test_keys_of_a_group_and_of_a_streamed_file_are_indexed(tmp_path: Path) -> None:
    db = Database(tmp_path / "cb.duckdb")
    written = tmp_path / "streamed.parquet"
    with db.transaction() as con:
        table = pa.table({"CallSessionId": pa.array(["b'q"])})
        data_store.insert_many(con, "call_conversions", 7, [(1, 1, table, pa.array([2], pa.int64()))])
        streamed = data_store.staged_rows(
            pa.table({"CallSessionId": pa.array(["a", "d\x00"])}), pa.array([2, 3], pa.int64()),
            run_id=1, file_id=2, connection_id=7,
        )  # fmt: skip
        pq.write_table(streamed, written)
        data_store.adopt_rows(con, "call_conversions", file_id=2, written=written, rows=2)
        assert _asked(con) == KEYS


def test_rows_stored_before_the_index_are_indexed_at_the_next_open(tmp_path: Path) -> None:
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        _store(con, 1, 8, ["c"])
        con.execute(  # rows as an older version stored them: no index entries, nothing filled
            'INSERT INTO data_call_conversions (run_id, file_id, connection_id, line, "CallSessionId") '
            "VALUES (1, 2, 7, 2, 'a'), (1, 2, 7, 3, 'b''q'), (1, 3, 7, 2, 'd\x00')"
        )
        con.execute("DELETE FROM data_keys")
        con.execute("DELETE FROM data_keys_filled")
    db.release()
    again = Database(tmp_path / "cb.duckdb")
    with again.connect() as con:
        assert _asked(con) == KEYS
        filled = con.execute("SELECT count(*) FROM data_keys_filled").fetchone()
        assert filled is not None and filled[0] >= 1


def test_an_index_another_duckdb_hashed_is_rebuilt_at_the_next_open(tmp_path: Path) -> None:
    """`hash()` may change between DuckDB versions: hashes of another are not trusted."""
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        _store(con, 1, 7, KEYS)
        con.execute("UPDATE data_keys SET key_hash = key_hash + 1")  # as another hash() would
        con.execute("UPDATE data_keys_filled SET hashed_by = 'duckdb 0.9.2 hash(VARCHAR)'")
        assert _asked(con) == []
    db.release()
    again = Database(tmp_path / "cb.duckdb")
    with again.connect() as con:
        assert _asked(con) == KEYS
        assert con.execute("SELECT DISTINCT hashed_by FROM data_keys_filled").fetchall() == [
            (keys.HASHED_BY,)
        ]


def test_a_hash_match_is_checked_against_the_stored_rows(tmp_path: Path) -> None:
    """The index is a filter: an entry whose file does not hold the key (a collision) finds
    nothing."""
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        _store(con, 1, 7, ["a"])
        con.execute("INSERT INTO data_keys VALUES ('call_conversions', 7, hash('zzz'), 1)")
        assert data_store.existing_keys(
            con, "call_conversions", 7, pa.table({"CallSessionId": pa.array(["zzz", "a"])})
        ) == ["a"]


def test_new_keys_do_not_read_the_stored_rows(tmp_path: Path) -> None:
    """A file of new keys (the usual case) costs one scan of the index: the stored rows, which
    grow with the connection's history, are not read (issue 13: 48 ms a file once a connection
    held a million rows)."""
    db = Database(tmp_path / "cb.duckdb")
    asked: list[str] = []
    with db.transaction() as con:
        _store(con, 1, 7, KEYS)
        traced = _Tracing(con, asked)
        found = data_store.existing_keys(
            traced, "call_conversions", 7, pa.table({"CallSessionId": pa.array(["new", "other"])})
        )  # type: ignore[arg-type]
    assert found == []
    assert asked and not [sql for sql in asked if "rows_call_conversions" in sql or "data_call" in sql]


class _Tracing:
    """A connection that notes the SQL it is asked."""

    def __init__(self, con: duckdb.DuckDBPyConnection, asked: list[str]) -> None:
        self._con, self._asked = con, asked

    def execute(self, sql: str, *args: Any) -> Any:
        self._asked.append(sql)
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)
