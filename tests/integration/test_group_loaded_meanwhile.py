"""Group commit asks again, inside its load transaction, whether the files' records were
loaded meanwhile (`commit.still_new`), as a file alone does: the group's "already loaded"
check runs before the load, and a push of the same records may load in between (found by an
audit with two real processes for single files; the group had the same gap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import call_csv
from helpers.store import count

from connectbatch.models import RunStatus
from connectbatch.pipeline import group, staging
from connectbatch.services import Services


def test_records_loaded_between_the_check_and_the_group_load_are_not_loaded_twice(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_connection("Acme")
    first, second = tmp_path / "calls_a.csv", tmp_path / "calls_b.csv"
    first.write_bytes(call_csv(5, prefix="a"))
    second.write_bytes(call_csv(4, prefix="b"))
    other = tmp_path / "calls_a_crlf.csv"  # the same records as `first`, other bytes
    other.write_bytes(call_csv(5, prefix="a").replace(b"\n", b"\r\n"))
    settle = staging.settle
    raced: list[Any] = []

    def meanwhile(sha256: str) -> None:  # the group settles its copies right before its load
        if not raced:
            raced.append(None)  # once: the push's own settle comes through here too
            raced[0] = services.ingest_file("Acme", other, trigger="push")
        settle(sha256)

    monkeypatch.setattr(group.staging, "settle", meanwhile)
    runs = services.ingest_files("Acme", [first, second])

    assert raced and raced[0].status is RunStatus.COMPLETED and raced[0].actions_created == 5
    statuses = sorted(r.status.value for r in runs)
    assert statuses == [RunStatus.COMPLETED.value, RunStatus.NEEDS_REVIEW.value], [r.reason for r in runs]
    assert count(services, "actions") == 5 + 4  # `first`'s records once (the push's), `second`'s


def test_a_single_file_asks_again_when_its_process_committed_since_its_check(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's load skips the second question only while nothing was written since its
    check (`Database.write_mark`): here the same process loads the same records in between."""
    make_connection("Acme")
    first, other = tmp_path / "calls_a.csv", tmp_path / "calls_a_crlf.csv"
    first.write_bytes(call_csv(5, prefix="a"))
    other.write_bytes(call_csv(5, prefix="a").replace(b"\n", b"\r\n"))
    settle = staging.settle
    raced: list[Any] = []

    def meanwhile(sha256: str) -> None:  # the commit half settles the staged copy first
        if not raced:
            raced.append(None)
            raced[0] = services.ingest_file("Acme", other, trigger="push")
        settle(sha256)

    monkeypatch.setattr(staging, "settle", meanwhile)
    run = services.ingest_file("Acme", first)

    assert raced[0].status is RunStatus.COMPLETED and raced[0].actions_created == 5
    assert run.status is RunStatus.NEEDS_REVIEW, run.reason
    assert count(services, "actions") == 5


def test_nothing_written_since_the_check_asks_nothing_again(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectbatch.store import data as data_store

    make_connection("Acme")
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv(5, prefix="n"))
    asked: list[int] = []
    existing = data_store.existing_keys

    def counted(*args: Any) -> list[str]:
        asked.append(1)
        return existing(*args)

    monkeypatch.setattr(data_store, "existing_keys", counted)
    run = services.ingest_file("Acme", path)

    assert run.status is RunStatus.COMPLETED and count(services, "actions") == 5
    assert len(asked) == 1  # the check before validation; the load's transaction did not ask


def test_a_commit_to_another_database_asks_nothing_again(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write mark counts the commits of the file it is of: another database of the same
    process (a test's, another data folder's) wrote nothing here."""
    from connectbatch.store import Database
    from connectbatch.store import data as data_store

    make_connection("Acme")
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv(5, prefix="n"))
    other = Database(tmp_path / "other.duckdb")
    asked: list[int] = []
    existing = data_store.existing_keys

    def counted(*args: Any) -> list[str]:
        asked.append(1)
        found = existing(*args)
        with other.transaction() as con:  # right after the check: another file's commit
            con.execute("CREATE TABLE IF NOT EXISTS t (i INTEGER)")
        return found

    monkeypatch.setattr(data_store, "existing_keys", counted)
    run = services.ingest_file("Acme", path)
    other.release()

    assert run.status is RunStatus.COMPLETED and count(services, "actions") == 5
    assert len(asked) == 1
