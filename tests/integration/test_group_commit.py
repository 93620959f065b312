"""Group commit (issue 13): files waiting together are ingested with one commit for their
ledger entries and one for their loads, each file keeping its own run, ledger row, rejects,
actions and results file; and a single file's run opens in the transaction that records it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from helpers import call_csv
from helpers.store import count, results_of

from connectbatch.models import Connection, Direction, FileState, Method, Methodology, Run, RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store import data as data_store
from connectbatch.store import runs as run_store


def _files(tmp_path: Path, *contents: bytes) -> list[Path]:
    paths = []
    for i, data in enumerate(contents):
        path = tmp_path / f"calls_{i}.csv"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _commits(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the commits of `services.db.transaction` from now on (one element each): of
    that database only, not another test's whose run heartbeat wakes meanwhile (a CI run
    counted 3 for 2 so)."""
    seen: list[int] = []
    original = type(services.db).transaction

    def counted(self: Any) -> Any:
        if self is services.db:
            seen.append(1)
        return original(self)

    monkeypatch.setattr(type(services.db), "transaction", counted)
    return seen


def test_a_group_loads_each_file_as_its_own_run_with_two_commits_in_all(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_connection("Acme")
    paths = _files(tmp_path, call_csv(5, prefix="a"), call_csv(7, prefix="b"), call_csv(3, prefix="c"))
    finished: list[Run] = []
    services.ingestor.on_finished.append(finished.append)
    transactions = _commits(services, monkeypatch)

    runs = services.ingest_files("Acme", paths)

    assert len(transactions) == 2  # the ledger entries, then the loads
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 3, [r.reason for r in runs]
    assert len({r.id for r in runs}) == 3
    for run, rows in zip(runs, (5, 7, 3), strict=True):
        assert (run.files_seen, run.files_loaded, run.rows_accepted, run.actions_created) == (
            1,
            1,
            rows,
            rows,
        )
        assert services.run(run.id) == run
        [f] = services.run_files(run.id)
        assert (f.state, f.rows_accepted) == (FileState.LOADED, rows)
        assert count(services, "call_conversions", run_id=run.id) == rows
        assert count(services, "validation_results", run_id=run.id) == 1
        csv_rows, summary = results_of(services, "Acme", run.id)
        assert len(csv_rows) == rows and summary["status"] == "loaded"
    assert finished == runs
    assert services.connection("Acme").status == "Completed"


def test_a_single_file_opens_its_run_and_records_it_in_one_transaction(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commits a file (was three); a failure while recording leaves no run behind."""
    make_connection("Acme")
    [path] = _files(tmp_path, call_csv(4))
    transactions = _commits(services, monkeypatch)
    run = services.ingest_file("Acme", path)
    assert run.status is RunStatus.COMPLETED, run.reason
    assert len(transactions) == 2

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk trouble while recording")

    monkeypatch.setattr(run_store, "record_file", broken)
    other = tmp_path / "other.csv"
    other.write_bytes(call_csv(4, prefix="z"))
    with pytest.raises(RuntimeError, match="disk trouble"):
        services.ingest_file("Acme", other)
    assert [r.id for r in services.runs("Acme")] == [run.id]  # no run opened without its file


def test_two_identical_files_in_one_group_are_loaded_once(
    services: Services, make_connection, tmp_path: Path
) -> None:
    make_connection("Acme")
    data = call_csv(6, prefix="same")
    paths = _files(tmp_path, data, call_csv(2, prefix="other"), data)

    first, other, again = services.ingest_files("Acme", paths)

    assert first.status is RunStatus.COMPLETED and other.status is RunStatus.COMPLETED
    assert again.status is RunStatus.COMPLETED, again.reason  # a duplicate is no failure
    assert (again.files_loaded, again.files_skipped, again.rows_duplicate) == (0, 1, 6)
    [f] = services.run_files(again.id)
    assert f.state == FileState.DUPLICATE
    assert count(services, "call_conversions") == 8
    assert services.count_actions("Acme") == 8


def test_a_file_repeating_keys_of_an_earlier_file_in_the_group_is_held_as_alone(
    services: Services, make_connection, tmp_path: Path
) -> None:
    """New bytes, same keys: the second file fails "already loaded" (held for review), as it
    would one after the other, although the first was not loaded when it was parsed."""
    make_connection("Acme")
    paths = _files(
        tmp_path, call_csv(4, prefix="k"), call_csv(4, prefix="k", newline="\n"), call_csv(2, prefix="n")
    )

    first, repeat, fresh = services.ingest_files("Acme", paths)

    assert first.status is RunStatus.COMPLETED and fresh.status is RunStatus.COMPLETED
    assert repeat.status is RunStatus.NEEDS_REVIEW, repeat.reason
    assert count(services, "call_conversions", run_id=repeat.id) == 0
    assert count(services, "call_conversions") == 6


def test_one_bad_file_does_not_fail_its_neighbours(
    services: Services, make_connection, tmp_path: Path
) -> None:
    make_connection("Acme")
    paths = _files(tmp_path, call_csv(3, prefix="a"), b"not,a,call,file\n1,2,3,4\n", call_csv(3, prefix="c"))

    good, bad, also_good = services.ingest_files("Acme", paths)

    assert good.status is RunStatus.COMPLETED and also_good.status is RunStatus.COMPLETED
    assert bad.status is RunStatus.FAILED and bad.reason
    assert [f.state for f in services.run_files(bad.id)] == [FileState.REJECTED]
    assert count(services, "call_conversions") == 6


def _failing_insert(
    monkeypatch: pytest.MonkeyPatch, rows: int, error: BaseException, times: int | None = None
) -> None:
    """Inserting a table of `rows` rows raises `error` (at most `times` times), whether the
    table goes alone (`insert_rows`) or with the group's other small tables (`insert_many`)."""
    left = [times]

    def hit(tables: list[Any]) -> None:
        if any(t.num_rows == rows for t in tables) and left[0] != 0:
            left[0] = None if left[0] is None else left[0] - 1
            raise error

    one, many = data_store.insert_rows, data_store.insert_many

    def insert_rows(*args: Any, **kwargs: Any) -> Any:
        hit([kwargs["table"]])
        return one(*args, **kwargs)

    def insert_many(con: Any, data_type: str, connection_id: int, batches: list[Any]) -> Any:
        hit([b[2] for b in batches])
        return many(con, data_type, connection_id, batches)

    monkeypatch.setattr(data_store, "insert_rows", insert_rows)
    monkeypatch.setattr(data_store, "insert_many", insert_many)


def test_a_group_load_that_fails_loads_its_files_one_at_a_time(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file whose insert breaks fails alone; its neighbours, rolled back with the group,
    load in transactions of their own; nothing of the failed file stays."""
    make_connection("Acme")
    paths = _files(tmp_path, call_csv(3, prefix="a"), call_csv(4, prefix="b"), call_csv(5, prefix="c"))
    _failing_insert(monkeypatch, 4, RuntimeError("insert broke"))

    a, b, c = services.ingest_files("Acme", paths)

    assert a.status is RunStatus.COMPLETED and c.status is RunStatus.COMPLETED
    assert b.status is RunStatus.FAILED and "insert broke" in (b.reason or "")
    assert count(services, "call_conversions", run_id=b.id) == 0
    assert count(services, "actions", run_id=b.id) == 0
    assert count(services, "call_conversions") == 8
    assert [r.rows_accepted for r in (a, c)] == [3, 5]


def test_a_crash_inside_the_group_load_leaves_no_partial_rows_and_each_file_can_be_retried(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_connection("Acme")
    paths = _files(tmp_path, call_csv(3, prefix="a"), call_csv(4, prefix="b"), call_csv(5, prefix="c"))
    _failing_insert(monkeypatch, 4, KeyboardInterrupt(), times=1)  # a stop the fallback must not swallow

    with pytest.raises(KeyboardInterrupt):
        services.ingest_files("Acme", paths)

    runs = services.runs("Acme")
    assert len(runs) == 3 and all(r.status is RunStatus.FAILED for r in runs), runs
    for table in ("call_conversions", "actions", "rejects", "validation_results"):
        assert count(services, table) == 0, table
    retried = [services.retry(r.id) for r in sorted(runs, key=lambda r: r.id)]
    assert [r.status for r in retried] == [RunStatus.COMPLETED] * 3, [r.reason for r in retried]
    assert count(services, "call_conversions") == 12


def _stored(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """What the store holds of the runs, without ids and times that differ between stores."""
    queries = {
        # by file name: a file repeating the bytes of another in its group is ingested after it
        "runs": "SELECT f.name, r.status, r.reason, r.files_seen, r.files_loaded, r.files_skipped, "
        "r.rows_accepted, r.rows_rejected, r.rows_duplicate, r.actions_created "
        "FROM runs r JOIN files f ON f.run_id = r.id ORDER BY f.name",
        "files": "SELECT name, state, message, rows_accepted, rows_rejected FROM files ORDER BY name",
        "rows": 'SELECT line, "CallSessionId", valid_to FROM rows_call_conversions ORDER BY file_id, line',
        "actions": "SELECT line, source_key, amount, status, lock_at, reason FROM actions "
        "ORDER BY file_id, line",
        "rejects": "SELECT line, column_name, value, reason FROM rejects ORDER BY file_id, line, column_name",
        "validation": "SELECT success, critical_failures, warnings FROM validation_results ORDER BY file_id",
        "headers": "SELECT header::VARCHAR FROM file_headers ORDER BY file_id",
    }
    with services.db.connect() as con:
        return {name: con.execute(sql).fetchall() for name, sql in queries.items()}


def test_a_group_stores_what_one_file_after_another_stores(
    services: Services, make_connection, tmp_path: Path
) -> None:
    """Same files, same outcome: runs, ledger, rows, actions (a late one LOCKED), rejects,
    validation results, headers and results files, whether loaded together or one by one."""
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)  # past a 30-day lock: created LOCKED
    contents = (
        call_csv(5, prefix="a"),
        call_csv(20, prefix="b", overrides={2: {"EventDate": "not a date"}}),  # a rejected row
        call_csv(3, prefix="c", event_date=old),
        call_csv(5, prefix="a"),  # the first again: a duplicate
        call_csv(3, prefix="p", newline="\n"),  # keys loaded before the group: held for review
        call_csv(5, prefix="a", newline="\n"),  # keys of the group's first file: held for review
    )
    paths = _files(tmp_path, *contents)
    before = tmp_path / "before.csv"
    before.write_bytes(call_csv(3, prefix="p"))
    make_connection("Acme", lock_days=30)
    services.ingest_file("Acme", before)
    grouped = services.ingest_files("Acme", paths)

    alone = Services(Settings(home=tmp_path / "alone", lock_timeout=10.0))
    alone.create_connection(
        Connection(
            name="Acme", data_type="call_conversions", direction=Direction.INBOUND,
            method=Method.SFTP, methodology=Methodology.PUSH, lock_days=30,
        )
    )  # fmt: skip
    one_by_one = [alone.ingest_file("Acme", p) for p in [before, *paths]][1:]

    assert [r.status for r in grouped] == [r.status for r in one_by_one]
    assert grouped[1].rows_rejected == 1 and grouped[3].files_skipped == 1
    assert [r.status for r in grouped[4:]] == [RunStatus.NEEDS_REVIEW] * 2
    mine, theirs = _stored(services), _stored(alone)
    assert any(a[3] == "LOCKED" for a in mine["actions"])
    assert mine == theirs
    for g, o in zip(grouped, one_by_one, strict=True):
        if g.files_loaded:
            assert results_of(services, "Acme", g.id)[0] == results_of(alone, "Acme", o.id)[0]
