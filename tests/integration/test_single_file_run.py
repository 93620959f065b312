"""A run of one file (CLI, upload, push) closes in its file's load transaction (issue 13:
one commit fewer per small file), and what can still go wrong after that commit is said."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import call_csv

from connectbatch.models import FileState, Run, RunStatus
from connectbatch.pipeline import owed, results
from connectbatch.services import Services


def test_the_run_is_completed_by_the_load_commit_before_the_results_are_published(
    services: Services, make_connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The results are written inside the load's transaction under owed names, and published
    once it committed (pipeline/owed.py): by then the run reads Completed."""
    make_connection("Acme")
    original = owed.publish
    seen: list[RunStatus] = []

    def spy(paths: Any) -> Any:
        paths = list(paths)
        assert all(p.name.startswith(owed.OWED_PREFIX) for p in paths)
        seen.append(services.runs("Acme")[0].status)  # what another reader sees at that moment
        return original(paths)

    monkeypatch.setattr(owed, "publish", spy)
    finished: list[Run] = []
    services.ingestor.on_finished.append(finished.append)

    run = services.ingest_bytes("Acme", "a.csv", call_csv(5))

    assert run.status is RunStatus.COMPLETED, run.reason
    assert seen == [RunStatus.COMPLETED]  # was In Progress: a second transaction closed it
    # the load's counters are added by the statement that closes the run
    assert (run.files_seen, run.files_loaded, run.rows_accepted, run.rows_rejected) == (1, 1, 5, 0)
    assert run.actions_created == 5
    assert finished == [run]  # the hooks (results e-mail) hear of it once, after the results file
    assert services.run(run.id) == run


def test_a_failure_after_the_load_commit_still_ends_the_run_failed(
    services: Services, make_connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_connection("Acme")
    original = results.write_outcome

    def broken(*args: Any, **kwargs: Any) -> Any:
        if args[4] is FileState.LOADED:
            raise RuntimeError("results folder vanished")
        return original(*args, **kwargs)

    monkeypatch.setattr(results, "write_outcome", broken)
    finished: list[Run] = []
    services.ingestor.on_finished.append(finished.append)

    run = services.ingest_bytes("Acme", "a.csv", call_csv(5))

    assert run.status is RunStatus.FAILED
    assert "write results failed" in (run.reason or "") and "results folder vanished" in (run.reason or "")
    [f] = services.run_files(run.id)
    assert f.state == FileState.FAILED
    assert [r.status for r in finished] == [RunStatus.FAILED]
    assert services.run(run.id).status is RunStatus.FAILED


def test_a_note_made_during_the_load_stays_the_runs_reason(services: Services, make_connection) -> None:
    """`finish` keeps a recorded reason when the run ends without one (no second read)."""
    make_connection("Acme")
    run = services.ingest_bytes("Acme", "a.csv", call_csv(5))
    with services.db.transaction() as con:
        from connectbatch.store import runs as run_store

        run_store.note(con, run.id, "pinned a host key")
        again = run_store.finish(con, run.id, RunStatus.COMPLETED, run.started_at, None, keep_reason=True)
        cleared = run_store.finish(con, run.id, RunStatus.COMPLETED, run.started_at, None)
        missing = run_store.finish(con, run.id + 1000, RunStatus.COMPLETED, run.started_at, None)
    assert again is not None and again.reason == "pinned a host key"
    assert cleared is not None and cleared.reason is None
    assert missing is None


def test_finishing_a_run_can_add_to_its_counters(services: Services, make_connection) -> None:
    from connectbatch.store import runs as run_store

    make_connection("Acme")
    run = services.ingest_bytes("Acme", "a.csv", call_csv(5))
    with services.db.transaction() as con:
        added = run_store.finish(
            con, run.id, RunStatus.COMPLETED, run.started_at, None,
            adding={"rows_accepted": 2, "actions_created": 1}, files_seen=1,
        )  # fmt: skip
        with pytest.raises(KeyError):
            run_store.finish(con, run.id, RunStatus.COMPLETED, run.started_at, adding={"nope": 1})
    assert added is not None and (added.rows_accepted, added.actions_created) == (7, 6)


def test_the_header_a_file_arrived_with_is_kept_once(services: Services, make_connection) -> None:
    """The load stores the header with a plain INSERT (no ON CONFLICT: ~1 ms a file); a file
    loads once, so there is nothing to update (a release of a held batch upserts instead)."""
    from connectbatch.store import syncback as syncback_store

    make_connection("Acme")
    run = services.ingest_bytes("Acme", "a.csv", call_csv(5))
    [f] = services.run_files(run.id)
    with services.db.connect() as con:
        stored = syncback_store.headers(con, [f.id])
    assert stored[f.id] == call_csv(5).decode().splitlines()[0].split(",")


def test_a_failure_closing_the_run_leaves_no_answer_behind(
    services: Services, make_connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is written on a worker while the load's transaction closes the run
    (commit.load_in): when the closing fails, the transaction rolls back and what the answer
    wrote is discarded too, so a start never publishes an answer to a load that did not
    commit (owed.settle_left)."""
    from connectbatch.pipeline import closing

    make_connection("Acme")
    written = threading.Event()
    original_write, original_close = results.write_outcome, closing.close

    def write(*args: Any, **kwargs: Any) -> Any:
        try:
            return original_write(*args, **kwargs)
        finally:
            written.set()

    def close(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("files"):  # the load's closing, not the failed run's afterwards
            assert written.wait(30)  # the answer's files are there when the closing fails
            raise RuntimeError("the run could not be closed")
        return original_close(*args, **kwargs)

    monkeypatch.setattr(results, "write_outcome", write)
    monkeypatch.setattr(closing, "close", close)

    run = services.ingest_bytes("Acme", "a.csv", call_csv(5))

    assert run.status is RunStatus.FAILED
    assert "the run could not be closed" in (run.reason or "")
    outbound = services.settings.outbound
    assert [p.name for p in outbound.rglob(f"{owed.OWED_PREFIX}*")] == []
    assert services.run_files(run.id)[0].state is not FileState.LOADED
    assert services.count_actions("Acme") == 0  # the load rolled back with the closing
