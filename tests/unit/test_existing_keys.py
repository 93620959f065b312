"""The "already loaded" check asks DuckDB which keys the connection holds: a small file's keys
go as one bound list (no register/unregister: issue 13), a large file's as an Arrow table.
Both answer alike."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from connectbatch.store import Database
from connectbatch.store import data as data_store


@pytest.mark.parametrize("small_list", [data_store.SMALL_LIST, 0])
def test_the_keys_a_connection_holds_whatever_their_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_list: int
) -> None:
    monkeypatch.setattr(data_store, "SMALL_LIST", small_list)
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        con.execute(
            'INSERT INTO data_call_conversions (run_id, file_id, connection_id, line, "CallSessionId") '
            "VALUES (1, 1, 7, 2, 'a'), (1, 1, 7, 3, 'b''q'), (1, 1, 8, 2, 'c'), (1, 1, 7, 4, 'd\x00')"
        )
        asked = pa.array(["a", "b'q", "c", "d\x00", "e", None, "a"])
        found = data_store.existing_keys(con, "call_conversions", 7, asked)
        none = data_store.existing_keys(con, "call_conversions", 7, pa.array([], pa.string()))
    assert sorted(found) == ["a", "b'q", "d\x00"]  # connection 8's key and unknown ones are not
    assert none == []
