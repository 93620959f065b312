"""A small file's compute runs while its ledger entry commits (`pipeline/ahead.py`, issue 13),
and is taken only when it holds for that entry: the same mapping, not a duplicate. Whatever
it gives, the run is the one the usual order (record, then compute) gives."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import call_csv
from helpers.store import count, results_of
from test_mapping_pipeline import vendor_csv

from connectbatch.models import FileState, RunStatus
from connectbatch.pipeline import ahead, ingest, stream
from connectbatch.services import Services
from connectbatch.store import data as data_store


def _taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each ingest from now on took its early compute (one element each)."""
    seen: list[bool] = []
    original = ahead.Ahead.take

    def take(self: ahead.Ahead, *args: Any) -> Any:
        got = original(self, *args)
        seen.append(got is not None)
        return got

    monkeypatch.setattr(ahead.Ahead, "take", take)
    return seen


def _outcome(services: Services, connection: str, run_id: int) -> tuple[Any, ...]:
    run = services.run(run_id)
    rows, summary = results_of(services, connection, run_id)
    own = ("run_id", "file_id", "connection", "seconds", "finished_at")
    kept = {k: v for k, v in summary.items() if k not in own}
    return (run.status, run.rows_accepted, run.rows_rejected, run.actions_created,
            [{k: v for k, v in r.items() if k != "ActionId"} for r in rows], kept)  # fmt: skip


@pytest.fixture
def calls(make_connection, tmp_path: Path) -> Path:
    """The connection "Acme" and a file of four calls for it."""
    make_connection("Acme")
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv(4, prefix="a"))
    return path


def test_a_small_file_is_computed_on_a_worker_and_loads_as_it_would_alone(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_connection("Early")
    make_connection("Usual")
    data = call_csv(60, prefix="e", overrides={2: {"CallerId": "not a phone"}, 4: {"SaleAmount": "12,5"}})
    path = tmp_path / "calls.csv"
    path.write_bytes(data)
    threads: list[str] = []
    compute = ahead.compute

    def spied(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return compute(*args, **kwargs)

    monkeypatch.setattr(ahead, "compute", spied)
    taken = _taken(monkeypatch)

    early = services.ingest_file("Early", path)
    monkeypatch.setattr(ahead, "SMALL_BYTES", 0)  # the usual order, for comparison
    usual = services.ingest_file("Usual", path)

    assert taken == [True, False]
    assert threads and threads[0].startswith("connectbatch-ahead")
    assert early.status is RunStatus.COMPLETED, early.reason
    assert _outcome(services, "Early", early.id) == _outcome(services, "Usual", usual.id)
    assert count(services, "actions") == 2 * early.actions_created > 0


def test_keys_loaded_before_are_found_and_not_looked_up_again_at_load(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early compute asks which records were loaded before; the ledger's own commit does
    not make the load ask again (one lookup a file), and the repeat is held as it would be."""
    make_connection("Acme")
    first, again = tmp_path / "calls_a.csv", tmp_path / "calls_a_crlf.csv"
    first.write_bytes(call_csv(5, prefix="a"))
    again.write_bytes(call_csv(5, prefix="a").replace(b"\n", b"\r\n"))  # same records, other bytes
    lookups: list[int] = []
    existing = data_store.existing_keys

    def counted(*args: Any, **kwargs: Any) -> Any:
        lookups.append(1)
        return existing(*args, **kwargs)

    monkeypatch.setattr(data_store, "existing_keys", counted)
    taken = _taken(monkeypatch)

    loaded = services.ingest_file("Acme", first)
    assert len(lookups) == 1
    repeat = services.ingest_file("Acme", again)

    assert taken == [True, True]
    assert loaded.status is RunStatus.COMPLETED and loaded.actions_created == 5
    assert repeat.status is RunStatus.NEEDS_REVIEW, repeat.reason
    assert len(lookups) == 2
    assert count(services, "actions") == 5


def test_a_commit_between_the_lookup_and_the_ledgers_makes_the_load_ask_again(
    services: Services, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the ledger's own commit is forgiven: another one in between (here a commit of
    this process right after the early lookup) and the load looks the keys up again."""
    lookups: list[int] = []
    existing = data_store.existing_keys

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = existing(*args, **kwargs)
        if not lookups:
            with services.db.transaction() as con:  # another writer's commit
                con.execute("SELECT 1")
        lookups.append(1)
        return found

    monkeypatch.setattr(data_store, "existing_keys", counted)

    run = services.ingest_file("Acme", calls)

    assert run.status is RunStatus.COMPLETED, run.reason
    assert len(lookups) == 2
    assert count(services, "actions") == 4


def test_a_mapping_saved_since_the_last_file_is_the_one_the_file_is_read_with(
    services: Services, make_connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early compute guesses the mapping of the connection's last file; the ledger reads
    the current one, and a guess that is not it is thrown away."""
    make_connection("Invoca feed")
    taken = _taken(monkeypatch)
    data = vendor_csv(4)
    before = services.ingest_bytes("Invoca feed", "no-mapping.csv", data)
    assert before.status is RunStatus.FAILED
    suggestion = services.suggest_mapping("Invoca feed", data)
    saved = services.set_mapping(
        "Invoca feed", suggestion.mapping, {"CampaignId": "1234", "CallProvider": "Invoca"}
    )

    run = services.ingest_bytes("Invoca feed", "calls.csv", vendor_csv(4, prefix="m"))
    again = services.ingest_bytes("Invoca feed", "more.csv", vendor_csv(3, prefix="n"))

    assert taken == [True, False, True]  # the second guessed "no mapping", the third the saved one
    assert run.status is RunStatus.COMPLETED, run.reason
    assert again.status is RunStatus.COMPLETED, again.reason
    assert run.mapping_version == again.mapping_version == saved.version
    assert count(services, "call_conversions", CampaignId=1234, CallProvider="Invoca") == 7


def test_a_duplicate_is_answered_without_its_early_compute(
    services: Services, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = _taken(monkeypatch)

    services.ingest_file("Acme", calls)
    repeat = services.ingest_file("Acme", calls)

    assert taken == [True, False]
    [f] = services.run_files(repeat.id)
    assert f.state == FileState.DUPLICATE and repeat.actions_created == 0
    assert count(services, "actions") == 4


def test_an_early_compute_that_breaks_is_done_again_the_usual_way(
    services: Services, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker broke")

    monkeypatch.setattr(ahead, "compute", broken)
    taken = _taken(monkeypatch)

    run = services.ingest_file("Acme", calls)

    assert taken == [False]
    assert run.status is RunStatus.COMPLETED, run.reason
    assert count(services, "actions") == 4


def test_a_ledger_transaction_that_fails_drops_the_early_compute(
    services: Services, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk gone")

    monkeypatch.setattr(ingest.staging, "record_in", refused)
    taken = _taken(monkeypatch)

    with pytest.raises(OSError, match="disk gone"):
        services.ingest_file("Acme", calls)

    assert taken == [False]
    assert count(services, "actions") == 0 and count(services, "runs") == 0


def test_a_file_that_streams_is_not_computed_ahead(
    services: Services, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A streamed file is parsed batch by batch on its own way (pipeline/stream.py): a whole
    parse beside its ledger would be thrown away."""
    monkeypatch.setattr(stream, "STREAM_MIN_BYTES", 0)
    started: list[object] = []
    start = ahead.Ahead.start

    def spied(self: ahead.Ahead, *args: Any) -> Any:
        started.append(got := start(self, *args))
        return got

    monkeypatch.setattr(ahead.Ahead, "start", spied)

    run = services.ingest_file("Acme", calls)

    assert started == [None]
    assert run.status is RunStatus.COMPLETED, run.reason
    assert count(services, "actions") == 4
