"""Parquet parts (store/parts.py): a file stored as a part behaves as one stored in the table
(insert, current rows, ending rows by correction or snapshot, repeats, existing keys, actions
with the same ids and lock times), a failed load leaves neither part nor row, and recovery
removes a part whose row never committed."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from connectbatch.store import Database, parts
from connectbatch.store import actions as action_store
from connectbatch.store import data as data_store
from connectbatch.store.db import all_rows, current_rows

NOW = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)


@pytest.fixture(params=["table", "parquet"])
def storage(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test once with files in the DuckDB table, once with every file a Parquet part."""
    if request.param == "parquet":
        monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", 1)
    yield str(request.param)


def _calls(ids: list[str], durations: list[int | None]) -> tuple[pa.Table, pa.Array]:
    n = len(ids)
    table = pa.table(
        {
            "CallSessionId": pa.array(ids, pa.string()),
            "CallDuration": pa.array(durations, pa.int64()),
            "CampaignId": pa.array([i % 2 for i in range(n)], pa.int32()),  # the table's is BIGINT
            "EventDate": pa.array(
                [dt.datetime(2026, 1, 1, 10, i % 60, tzinfo=dt.UTC) for i in range(n)],
                pa.timestamp("us", "UTC"),
            ),
            "SaleAmount": pa.array([f"{i}.25" for i in range(n)], pa.string()).cast(pa.decimal128(18, 2)),
        }
    )
    return table, pa.array([i + 2 for i in range(n)], pa.int32())


def _load(
    db: Database, file_id: int, ids: list[str], durations: list[int | None], connection: int = 7
) -> None:
    table, lines = _calls(ids, durations)
    with db.transaction() as con:
        data_store.insert_rows(
            con, "call_conversions", run_id=file_id, file_id=file_id, connection_id=connection,
            table=table, lines=lines,
        )  # fmt: skip


def _rows(db: Database, source: str) -> list[tuple[object, ...]]:
    with db.connect() as con:
        return con.execute(
            'SELECT file_id, line, "CallSessionId", "CallDuration", "SaleAmount", valid_to, '
            f"superseded_by, end_reason FROM {source} ORDER BY file_id, line"
        ).fetchall()


def _part_files(tmp_path: Path) -> list[Path]:
    """The part files (not the per-type placeholder giving the views their columns)."""
    return sorted((tmp_path / "parts").glob("*/f*"))


def test_insert_and_read_back_in_the_table_types(tmp_path: Path, storage: str) -> None:
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 1, ["a", "b", "c"], [10, None, 30])
    rows = _rows(db, all_rows("call_conversions"))
    assert [r[:5] for r in rows] == [
        (1, 2, "a", 10, Decimal("0.25")),
        (1, 3, "b", None, Decimal("1.25")),
        (1, 4, "c", 30, Decimal("2.25")),
    ]
    assert _rows(db, current_rows("call_conversions")) == rows
    with db.connect() as con:
        table_rows = con.execute("SELECT count(*) FROM data_call_conversions").fetchone()
        types = con.execute(f"DESCRIBE SELECT * FROM {all_rows('call_conversions')}").fetchall()
        base = con.execute("DESCRIBE SELECT * FROM data_call_conversions").fetchall()
    assert [t[:2] for t in types] == [b[:2] for b in base]  # same columns, order and types either way
    assert table_rows == ((0,) if storage == "parquet" else (3,))
    assert len(_part_files(tmp_path)) == (1 if storage == "parquet" else 0)


def test_end_rows_repeats_and_existing_keys(tmp_path: Path, storage: str) -> None:
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 1, ["a", "b", "c"], [10, 20, 30])
    new, new_lines = _calls(["b", "c", "d"], [20, 31, 40])
    with db.transaction() as con:
        assert sorted(
            data_store.existing_keys(
                con, "call_conversions", 7, pa.table({"CallSessionId": pa.array(["a", "d", "x"])})
            )
        ) == ["a"]
        assert (
            data_store.existing_keys(con, "call_conversions", 8, pa.table({"CallSessionId": pa.array(["a"])}))
            == []
        )
        found = data_store.repeats(con, "call_conversions", 7, new, new_lines)
        assert [(r.line, r.old_file_id, r.old_line) for r in found] == [(2, 1, 3), (3, 1, 4)]
        ended = data_store.end_rows(
            con, "call_conversions", [(1, 4), (1, 99)], by_file=2, at=NOW, reason="updated"
        )
        assert ended == 1
        # ending it again changes nothing: it is no longer current
        assert (
            data_store.end_rows(con, "call_conversions", [(1, 4)], by_file=2, at=NOW, reason="updated") == 0
        )
    rows = _rows(db, all_rows("call_conversions"))
    assert [(r[1], r[5], r[6], r[7]) for r in rows] == [
        (2, None, None, None), (3, None, None, None), (4, NOW, 2, "updated"),
    ]  # fmt: skip
    assert [r[1] for r in _rows(db, current_rows("call_conversions"))] == [2, 3]
    with db.transaction() as con:  # the ended version no longer repeats
        found = data_store.repeats(con, "call_conversions", 7, new, new_lines)
    assert [(r.line, r.old_file_id, r.old_line) for r in found] == [(2, 1, 3)]


def test_end_missing_snapshot(tmp_path: Path, storage: str) -> None:
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 1, ["a", "b", "c"], [1, 2, 3])
    _load(db, 2, ["z"], [9], connection=8)
    with db.transaction() as con:
        removed = data_store.end_missing(con, "call_conversions", 7, pa.array(["b", None]), by_file=3, at=NOW)
    assert removed == 2
    assert [(r[0], r[2]) for r in _rows(db, current_rows("call_conversions"))] == [(1, "b"), (2, "z")]
    ended = [r for r in _rows(db, all_rows("call_conversions")) if r[5] is not None]
    assert [(r[2], r[6], r[7]) for r in ended] == [("a", 3, "removed"), ("c", 3, "removed")]


def test_actions_same_ids_amounts_and_lock_times(tmp_path: Path, storage: str) -> None:
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 1, ["a", "b", "c"], [1, 2, 3])
    with db.transaction() as con:
        created = action_store.create_for_file(
            con, "call_conversions", connection_id=7, run_id=1, file_id=1, lock_days=30, rows=3
        )
        got = con.execute(
            "SELECT id, line, source_key, amount, lock_at, campaign_id FROM actions ORDER BY id"
        ).fetchall()
    assert created == 3
    assert [(g[1], g[2], str(g[3]), g[5]) for g in got] == [
        (2, "a", "0.25", 0), (3, "b", "1.25", 1), (4, "c", "2.25", 0),
    ]  # fmt: skip
    assert [g[0] for g in got] == sorted(g[0] for g in got)
    assert got[0][4] == dt.datetime(2026, 1, 31, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("block", [False, True])
def test_a_big_files_actions_take_one_block_of_ids_in_line_order(
    tmp_path: Path, storage: str, block: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: a file of RESERVE_MIN_ROWS rows or more draws its ids as one block (base +
    line); the rows, amounts and lock times are those nextval gives, and the ids of files
    before and after never meet them."""
    monkeypatch.setattr(action_store, "RESERVE_MIN_ROWS", 3 if block else 10**9)
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 1, ["a"], [1])
    _load(db, 2, ["b", "c", "d", "e"], [1, 2, 3, 4])
    _load(db, 3, ["f"], [1])
    with db.transaction() as con:
        for file_id, rows in ((1, 1), (2, 4), (3, 1)):
            action_store.create_for_file(
                con, "call_conversions", connection_id=7, run_id=1, file_id=file_id, lock_days=30, rows=rows
            )
        got = con.execute("SELECT id, file_id, line, source_key, lock_at FROM actions ORDER BY id").fetchall()
    assert [(g[1], g[2], g[3]) for g in got] == [
        (1, 2, "a"), (2, 2, "b"), (2, 3, "c"), (2, 4, "d"), (2, 5, "e"), (3, 2, "f"),
    ]  # fmt: skip
    ids = [g[0] for g in got]
    assert len(set(ids)) == len(ids)
    assert ids[1:5] == list(range(ids[1], ids[1] + 4))  # consecutive, as the lines are
    assert {g[4] for g in got} == {dt.datetime(2026, 1, 31, 10, m, tzinfo=dt.UTC) for m in (0, 1, 2, 3)}


def test_a_file_without_rows_takes_no_block(tmp_path: Path) -> None:
    """`_reserve` draws nothing where there is nothing to number."""
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 1, ["a", "b"], [1, 2])
    with db.transaction() as con:
        assert action_store._reserve(con, "data_call_conversions", 2) is None
        assert con.execute("SELECT nextval('seq_actions')").fetchone() == (1,)


def test_lock_times_are_whole_days_after_the_event_in_utc(tmp_path: Path) -> None:
    """`lock_at`'s epoch arithmetic gives what adding days gives in UTC, across a leap day
    and a daylight-saving change of other time zones."""
    db = Database(tmp_path / "cb.duckdb")
    events = ["2024-02-28 23:30:00+00", "2026-03-08 01:59:59.123456+00", "2026-10-31 12:00:00+00"]
    with db.connect() as con:
        for event in events:
            for days in (0, 1, 30, 365):
                got, want = con.execute(
                    f"SELECT {action_store.lock_at('e')}, e + to_days(CAST(? AS INTEGER)) "
                    "FROM (SELECT CAST(? AS TIMESTAMPTZ) AS e)",
                    [days, days, event],
                ).fetchone() or (None, None)
                assert got == want, (event, days)


def test_a_failed_load_leaves_no_part_and_no_row(tmp_path: Path, storage: str) -> None:
    db = Database(tmp_path / "cb.duckdb")
    table, lines = _calls(["a", "b"], [1, 2])
    with pytest.raises(RuntimeError), db.transaction() as con:
        data_store.insert_rows(
            con, "call_conversions", run_id=1, file_id=1, connection_id=7, table=table, lines=lines
        )  # fmt: skip
        raise RuntimeError("the load broke after the rows")
    assert _part_files(tmp_path) == []
    assert _rows(db, all_rows("call_conversions")) == []
    with db.connect() as con:
        assert con.execute("SELECT count(*) FROM data_parts").fetchone() == (0,)
    _load(db, 1, ["a"], [1])  # the views still work after the rollback
    assert len(_rows(db, all_rows("call_conversions"))) == 1


def test_recovery_removes_an_orphan_part_and_keeps_committed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", 1)
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 1, ["a"], [1])
    [kept] = _part_files(tmp_path)
    dead = 2**22 + 12345  # no such process
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
    orphan = kept.with_name(f"f9-p0-{dead}.parquet")
    orphan.write_bytes(kept.read_bytes())
    tmp = kept.with_name(f"f10-p0-{dead}.parquet.tmp")
    tmp.write_bytes(b"half")
    live = kept.with_name(f"f11-p0-{os.getpid()}.parquet")  # a load under way in this process
    live.write_bytes(kept.read_bytes())
    # an uncommitted or orphan part is not read, even with rows of a committed file
    assert len(_rows(db, all_rows("call_conversions"))) == 1
    with db.transaction() as con:
        removed = parts.remove_orphans(con)
    assert sorted(removed) == sorted([orphan, tmp])
    assert _part_files(tmp_path) == sorted([kept, live])
    assert len(_rows(db, all_rows("call_conversions"))) == 1


def test_views_follow_a_column_the_table_gains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A column added to the table later reads as NULL for parts written before it."""
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", 1)
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 1, ["a"], [1])
    with db.transaction() as con:
        con.execute("ALTER TABLE data_call_conversions ADD COLUMN extra_col VARCHAR")
        parts.refresh_views(con, "call_conversions")
        got = con.execute(f'SELECT "CallSessionId", extra_col FROM {all_rows("call_conversions")}').fetchall()
    assert got == [("a", None)]


def test_two_loads_add_parts_at_once_and_see_only_committed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding a part (after a data type's first) changes no view: two open load
    transactions both commit (a view recreated per part made the second fail on a catalog
    conflict), and a part is seen by others only once its load commits."""
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", 1)
    db = Database(tmp_path / "cb.duckdb")
    _load(db, 9, ["first"], [0])
    with db.held(), db.transaction() as one, db.transaction() as two:
        for con, file_id in ((one, 1), (two, 2)):
            table, lines = _calls([f"k{file_id}"], [file_id])
            data_store.insert_rows(
                con, "call_conversions", run_id=file_id, file_id=file_id, connection_id=7,
                table=table, lines=lines,
            )  # fmt: skip
        with db.connect() as other:
            assert other.execute(f"SELECT count(*) FROM {all_rows('call_conversions')}").fetchone() == (1,)
        assert one.execute(f"SELECT file_id FROM {all_rows('call_conversions')} ORDER BY 1").fetchall() == [
            (1,), (9,),
        ]  # fmt: skip
    assert [r[0] for r in _rows(db, all_rows("call_conversions"))] == [1, 2, 9]


def test_a_part_keeps_statistics_on_numbers_times_and_the_key_only(tmp_path: Path) -> None:
    """Row-group min/max where a reader can skip row groups by them (numbers, times, the
    key); none on other text, where they prune nothing and cost a sixth of the write."""
    import pyarrow.parquet as pq

    db = Database(tmp_path / "cb.duckdb")
    table, lines = _calls(["b", "a"], [5, None])
    table = table.append_column("City", pa.array(["Zurich", "Aarau"], pa.string()))
    with db.transaction() as con:
        written = parts.write(
            con, "call_conversions", 1,
            data_store.staged_rows(table, lines, run_id=1, file_id=1, connection_id=7),
        )  # fmt: skip
        (rel,) = con.execute("SELECT path FROM data_parts WHERE file_id = 1").fetchone() or ("",)
        path = parts.root(con) / rel
    assert written == 2
    group = pq.ParquetFile(path).metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).statistics for i in range(group.num_columns)}
    assert stats["CallSessionId"] is not None and stats["CallSessionId"].min == "a"
    assert stats["CallDuration"] is not None and stats["EventDate"] is not None
    assert stats["file_id"] is not None
    assert stats["City"] is None or not stats["City"].has_min_max
