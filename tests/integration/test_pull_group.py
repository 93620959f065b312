"""A pull run that finds many files ingests them with group commit (`group.ingest_in_run`):
a real FTP server, the real pipeline, a real DuckDB file. Grouped or one at a time, the run,
its ledger, its actions, its results files and the remote folder end the same."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ftpd
import pytest
from helpers import call_csv

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.pipeline import group
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import FtpSpec, FtpTls


@pytest.fixture(scope="module")
def server() -> Iterator[ftpd.FtpServer]:
    with ftpd.any_server() as found:
        yield found


def _connection(services: Services, server: ftpd.FtpServer, folder: str) -> Connection:
    draft = Connection(
        "Partner FTP", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host=server.host, port=server.port, folder=folder, pattern="Calls_*.csv",
        transfer=FtpSpec(tls=FtpTls.NONE), after_success="delete",  # type: ignore[arg-type]
    )  # fmt: skip
    login = CredentialInput("partner", server.username, server.password)
    created, _ = services.create_connection(draft, login)
    return created


def _put_calls(server: ftpd.FtpServer, folder: str, rows: list[int], prefix: str) -> None:
    """`Calls_<k>.csv` of rows[k] rows each into `folder`, oldest first, two hours old."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    for k, n in enumerate(rows):
        server.put(
            f"{folder}/Calls_{k}.csv", call_csv(n, prefix=f"{prefix}{k}"), start + dt.timedelta(minutes=k)
        )


def _partner_folder(server: ftpd.FtpServer, folder: str) -> list[str]:
    """Twelve files, oldest first: good ones, a wrong header (refused), a byte-for-byte
    repeat (duplicate), a repeat of keys an earlier file of the run loads (held for review)."""
    folder = server.mkdir(folder)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    files = [(f"Calls_{i:02d}.csv", call_csv(5 + i, prefix=f"g{i}")) for i in range(9)]
    files.insert(3, ("Calls_03b_bad.csv", b"Date,Caller\r\n2026-03-01,+1555\r\n"))
    files.insert(6, ("Calls_05b_same.csv", files[5][1]))
    files.append(("Calls_99_again.csv", call_csv(3, prefix="g1")))  # keys Calls_01 loads
    for k, (name, data) in enumerate(files):
        server.put(f"{folder}/{name}", data, start + dt.timedelta(minutes=k))
    return [name for name, _ in files]


def _outcome(services: Services, server: ftpd.FtpServer, folder: str) -> dict[str, Any]:
    run = services.runs("Partner FTP")[0]
    files = sorted(
        (f.name, str(f.state), f.rows_accepted, f.rows_rejected) for f in services.run_files(run.id)
    )
    counts = (run.files_seen, run.files_loaded, run.files_skipped)
    rows = (run.rows_accepted, run.rows_rejected, run.actions_created)
    return {
        "run": (run.status, *counts, *rows),
        "files": files,
        "actions": services.count_actions(),
        "results": sorted(p.name.split("_", 1)[-1] for p in services.run_results_files(run.id)),
        "left": sorted(p.name for p in server.local(folder).iterdir()),
    }


def test_a_pull_of_many_files_loads_them_in_groups_as_one_at_a_time_would(
    server: ftpd.FtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    together: list[int] = []
    load_many = group.load_many

    def counted(con: Any, connection: Any, batches: list[Any], now: Any, **kw: Any) -> Any:
        together.append(len(batches))
        return load_many(con, connection, batches, now, **kw)

    monkeypatch.setattr(group, "load_many", counted)
    outcomes = []
    for limit, folder in ((4, "/group-a"), (1, "/group-b")):
        monkeypatch.setattr(group, "GROUP_MAX_FILES", limit)
        names = _partner_folder(server, folder)
        services = Services(Settings(home=tmp_path / f"home{limit}", lock_timeout=10.0))
        _connection(services, server, folder)
        run = services.pull("Partner FTP")
        assert run.files_seen == len(names)
        outcomes.append(_outcome(services, server, folder))
    grouped, alone = outcomes

    assert together and max(together) > 1, "the grouped pull loaded no files together"
    assert grouped == alone
    assert grouped["run"][0] is RunStatus.FAILED  # the wrong header fails the run, as alone
    states = {name: state for name, state, *_ in grouped["files"]}
    assert states["Calls_03b_bad.csv"] == "rejected" and states["Calls_05b_same.csv"] == "duplicate"
    assert states["Calls_99_again.csv"] == "quarantined"
    assert sum(s == "loaded" for s in states.values()) == 9
    # only what went in (loaded, or a duplicate of what did) left the partner's folder
    assert grouped["left"] == ["Calls_03b_bad.csv", "Calls_99_again.csv"]


def test_a_fetch_that_fails_the_run_comes_after_those_fetched_before_it_went_in(
    server: ftpd.FtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectbatch.errors import TransportError
    from connectbatch.transfer.pull.ftp.transport import FtpTransport

    folder = server.mkdir("/group-c")
    _put_calls(server, folder, [4] * 4, "c")
    fetch = FtpTransport.fetch

    def cut_off(self: FtpTransport, remote: Any, target: Path) -> None:
        if remote.name == "Calls_2.csv":  # the server goes away in the middle of the run
            raise TransportError(f"RETR {remote.path} failed: the server closed the connection")
        fetch(self, remote, target)

    monkeypatch.setattr(FtpTransport, "fetch", cut_off)
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0))
    _connection(services, server, folder)

    run = services.pull("Partner FTP")

    assert run.status is RunStatus.FAILED and "Calls_2.csv" in (run.reason or "")
    loaded = {f.name for f in services.run_files(run.id) if str(f.state) == "loaded"}
    assert loaded == {"Calls_0.csv", "Calls_1.csv"}
    assert run.rows_accepted == 8
    assert sorted(p.name for p in server.local(folder).iterdir()) == ["Calls_2.csv", "Calls_3.csv"]


class _Stop(BaseException):
    """The process stopping in the middle of a group's load (as a kill would, but in-process)."""


def test_a_pull_stopped_during_a_groups_load_fails_and_its_retry_loads_every_file_once(
    server: ftpd.FtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = server.mkdir("/group-d")
    _put_calls(server, folder, [3 + k for k in range(5)], "d")
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0))
    _connection(services, server, folder)

    def stop(*args: Any, **kwargs: Any) -> Any:
        raise _Stop("killed")

    with monkeypatch.context() as patched:
        patched.setattr(group, "load_many", stop)
        with pytest.raises(_Stop):
            services.pull("Partner FTP")
    failed = services.runs("Partner FTP")[0]
    assert failed.status is RunStatus.FAILED and "killed" in (failed.reason or "")
    assert services.count_actions() == 0  # the group's load left nothing behind
    assert len(list(server.local(folder).iterdir())) == 5  # nothing tidied away unloaded

    retried = services.retry(failed.id)

    assert retried.status is RunStatus.COMPLETED and retried.files_loaded == 5
    assert retried.rows_accepted == services.count_actions() == sum(3 + k for k in range(5))
    again = services.pull("Partner FTP")  # the files the retry loaded are settled: tidied away
    assert services.count_actions() == sum(3 + k for k in range(5))
    assert again is None or again.files_loaded == 0
    assert not list(server.local(folder).iterdir())


def test_a_remote_file_that_cannot_be_tidied_is_noted_and_nothing_is_ingested_twice(
    server: ftpd.FtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectbatch.errors import TransportError
    from connectbatch.transfer.pull.ftp.transport import FtpTransport

    folder = server.mkdir("/group-e")
    _put_calls(server, folder, [2 + k for k in range(5)], "e")

    def refused(self: FtpTransport, remote: Any, action: str, archive_folder: str | None) -> None:
        raise TransportError(f"550 {remote.name}: permission denied")  # as a server refusing DELE

    monkeypatch.setattr(FtpTransport, "after_success", refused)
    monkeypatch.setattr(group, "GROUP_MAX_FILES", 3)  # the refusal comes after the first group
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0))
    _connection(services, server, folder)

    run = services.pull("Partner FTP")

    # Loaded, so not a failure; refusing every later run would hold back every new file.
    assert run.status is RunStatus.COMPLETED and "550 Calls_0.csv" in (run.reason or "")
    assert "and 2 more taken but not deleted" in (run.reason or "")
    files = services.run_files(run.id)
    assert [f.name for f in files] == [f"Calls_{k}.csv" for k in range(5)]
    assert {str(f.state) for f in files} == {"loaded"}
    assert services.count_actions() == 2 + 3 + 4 + 5 + 6

    again = services.pull("Partner FTP")  # still refused: nothing is ingested twice
    assert again.status is RunStatus.COMPLETED and again.files_loaded == 0
    assert services.count_actions() == 2 + 3 + 4 + 5 + 6


def test_a_pull_that_fetched_nothing_is_retried_by_a_new_pull_recorded_as_its_retry(
    server: ftpd.FtpServer, tmp_path: Path
) -> None:
    """The folder is not there yet: the run fails before it fetches anything, so its retry
    pulls again, and that run is the failed one's retry (it used to be a run of its own, and
    the failed run could be retried again and again)."""
    from connectbatch.errors import ConnectBatchError

    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0))
    _connection(services, server, "/group-later")
    failed = services.pull("Partner FTP")
    assert failed.status is RunStatus.FAILED and not services.run_files(failed.id)
    _put_calls(server, server.mkdir("/group-later"), [2, 3], "r")

    retried = services.retry(failed.id)

    assert (retried.trigger, retried.retry_of) == ("retry", failed.id)
    assert retried.status is RunStatus.COMPLETED and retried.files_loaded == 2
    assert services.count_actions() == 5
    with pytest.raises(ConnectBatchError, match=f"retried already, as run {retried.id}"):
        services.retry(failed.id)
