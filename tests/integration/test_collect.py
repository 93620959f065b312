"""Pull runs end to end: a real FTP server, the real pipeline, a real DuckDB file."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import ftpd
import pytest
from helpers import call_csv
from helpers.clock import Clock

from connectbatch.engine.scheduler import Scheduler
from connectbatch.errors import RunInProgressError
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer import base
from connectbatch.transfer.pull import collect
from connectbatch.transfer.specs import FtpSpec, FtpTls


@pytest.fixture(scope="module")
def server() -> Iterator[ftpd.FtpServer]:
    with ftpd.any_server() as found:
        yield found


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(settings: Settings, clock: Clock) -> Services:
    return Services(settings, clock=clock)


def pull_connection(
    services: Services, server: ftpd.FtpServer, folder: str, password: str | None = None, **attrs: object
) -> Connection:
    draft = Connection(
        "Partner FTP", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host=server.host, port=server.port, folder=folder, pattern="Calls_202?_*.csv",
        transfer=FtpSpec(tls=FtpTls.NONE),  # the test server speaks plain FTP
        **attrs,  # type: ignore[arg-type]
    )  # fmt: skip
    login = CredentialInput("partner", server.username, password or server.password)
    created, provisioned = services.create_connection(draft, login)
    assert provisioned is None  # we log in to theirs: nothing is provisioned
    return created


def states(services: Services, run_id: int) -> dict[str, tuple[str, str | None]]:
    return {f.name: (f.state, f.message) for f in services.run_files(run_id)}


def test_pull_takes_matching_finished_files_once_and_archives_them(
    services: Services, server: ftpd.FtpServer
) -> None:
    folder = server.mkdir("/collect-a")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    server.put(f"{folder}/Calls_2026_w1.csv", call_csv(5, prefix="w1"), old)
    server.put(f"{folder}/Calls_2026_w2.csv.part", call_csv(5, prefix="w2"), old)
    server.put(f"{folder}/Clicks_2026_w1.csv", b"not ours", old)
    pull_connection(services, server, folder, after_success="archive", archive_folder=f"{folder}/done")

    run = services.pull("Partner FTP")

    assert run.status is RunStatus.COMPLETED
    assert (run.files_seen, run.files_loaded, run.rows_accepted, run.actions_created) == (1, 1, 5, 5)
    assert states(services, run.id) == {"Calls_2026_w1.csv": ("loaded", None)}
    assert not server.local(f"{folder}/Calls_2026_w1.csv").exists()
    assert server.local(f"{folder}/done/Calls_2026_w1.csv").exists()
    assert server.local(f"{folder}/Calls_2026_w2.csv.part").exists()  # still being written: untouched

    again = services.pull("Partner FTP")
    assert again.status is RunStatus.COMPLETED
    assert again.files_loaded == 0 and services.count_actions("Partner FTP") == 5


def test_files_younger_than_the_minimum_age_wait_for_a_later_run(
    services: Services, server: ftpd.FtpServer, clock: Clock
) -> None:
    folder = server.mkdir("/collect-b")
    server.put(f"{folder}/Calls_2026_w3.csv", call_csv(3, prefix="w3"), clock.now - dt.timedelta(seconds=30))
    pull_connection(services, server, folder, min_age_seconds=300)

    first = services.pull("Partner FTP")
    state, message = states(services, first.id)["Calls_2026_w3.csv"]
    assert state == "skipped" and "minimum age of 300 s" in (message or "")
    assert services.count_actions("Partner FTP") == 0

    clock.now += dt.timedelta(minutes=10)
    second = services.pull("Partner FTP")
    assert states(services, second.id)["Calls_2026_w3.csv"][0] == "loaded"
    assert services.count_actions("Partner FTP") == 3


def test_a_rejected_file_is_not_fetched_again_until_the_partner_replaces_it(
    services: Services, server: ftpd.FtpServer
) -> None:
    folder = server.mkdir("/collect-c")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    server.put(f"{folder}/Calls_2026_bad.csv", b"Date,Caller\r\n2026-03-01,+1555\r\n", old)
    pull_connection(services, server, folder)

    first = services.pull("Partner FTP")
    assert first.status is RunStatus.FAILED
    assert "Calls_2026_bad.csv" in (first.reason or "") and "lacks required" in (first.reason or "")

    second = services.pull("Partner FTP")
    state, message = states(services, second.id)["Calls_2026_bad.csv"]
    assert state == "skipped" and f"rejected in run {first.id}" in (message or "")

    server.put(f"{folder}/Calls_2026_bad.csv", call_csv(2, prefix="fixed"), old + dt.timedelta(minutes=5))
    third = services.pull("Partner FTP")
    assert third.status is RunStatus.COMPLETED and third.rows_accepted == 2


def test_a_file_still_being_written_waits_and_the_finished_ones_go_in(
    services: Services, server: ftpd.FtpServer
) -> None:
    """The partner is still writing a file under its final name: it grows between our
    listing and our download. That file waits for a later run; the finished files beside it
    go in now, and the login is not marked as failing."""
    folder = server.mkdir("/collect-grow")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    server.put(f"{folder}/Calls_2026_a.csv", call_csv(3, prefix="grow"), old)
    server.put(f"{folder}/Calls_2026_b.csv", call_csv(2, prefix="done-b"), old)
    server.put(f"{folder}/Calls_2026_c.csv", call_csv(4, prefix="done-c"), old)
    connection = pull_connection(services, server, folder)

    def partner_still_writing(method: str, endpoint: base.Endpoint) -> base.Transport:
        transport = base.open_transport(method, endpoint)
        listed = transport.list_files

        def list_then_write(folder: str, pattern: str) -> list[base.RemoteFile]:
            files = listed(folder, pattern)
            server.put(f"{folder}/Calls_2026_a.csv", call_csv(6, prefix="grow"), old)  # more rows
            return files

        transport.list_files = list_then_write  # type: ignore[method-assign]
        return transport

    first = collect.pull(services.ingestor, services.box, connection, "manual", partner_still_writing)
    assert first is not None
    assert first.status is RunStatus.COMPLETED, first.reason
    found = states(services, first.id)
    assert (found["Calls_2026_b.csv"][0], found["Calls_2026_c.csv"][0]) == ("loaded", "loaded")
    state, message = found["Calls_2026_a.csv"]
    assert state == "skipped" and "still writing" in (message or ""), message
    assert first.rows_accepted == 6
    [credential] = services.credentials("Partner FTP")
    assert credential.status == "Active" and not credential.last_error

    second = services.pull("Partner FTP")  # finished now
    assert states(services, second.id) == {"Calls_2026_a.csv": ("loaded", None)}
    assert second.rows_accepted == 6 and services.count_actions("Partner FTP") == 12


def test_a_wrong_password_fails_the_run_and_marks_the_credential(
    services: Services, server: ftpd.FtpServer
) -> None:
    folder = server.mkdir("/collect-d")
    pull_connection(services, server, folder, password="not-the-password-123")

    run = services.pull("Partner FTP")

    assert run.status is RunStatus.FAILED
    assert "login" in (run.reason or "") and "not-the-password-123" not in (run.reason or "")
    [credential] = services.credentials("Partner FTP")
    assert credential.status == "Error" and credential.last_error
    assert services.connection("Partner FTP").status.value == "Failed"


def test_push_connections_have_nothing_to_pull(services: Services) -> None:
    services.create_connection(
        Connection("Pushed", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    with pytest.raises(ValueError, match="nothing to pull"):
        services.pull("Pushed")


def test_one_run_per_connection_at_a_time(services: Services, server: ftpd.FtpServer) -> None:
    folder = server.mkdir("/collect-e")
    connection = pull_connection(services, server, folder, schedule="*/5 * * * *")
    started, release = threading.Event(), threading.Event()

    def slow_pull(c: Connection, trigger: str):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(10)
        return services.pull(c.id, trigger)

    scheduler = Scheduler(services.connections, slow_pull, services.lock_actions)
    scheduler.start()
    try:
        next_run = scheduler.next_run(connection.id)
        assert next_run is not None and next_run.minute % 5 == 0  # the connection's cron
        worker = threading.Thread(target=scheduler.run_now, args=(connection,))
        worker.start()
        assert started.wait(10)
        with pytest.raises(RunInProgressError):
            scheduler.run_now(connection)
        release.set()
        worker.join(20)
        assert not scheduler.is_running(connection.id)
    finally:
        release.set()
        scheduler.shutdown()


def test_a_poll_of_files_left_in_place_asks_the_ledger_once_for_the_listing(
    services: Services, server: ftpd.FtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partner who leaves every file in the folder: each later poll decides for every
    listed file that an earlier run took it. Asked file by file, that was a statement (and
    an open of the database) per listed file, minutes a poll for a 200,000-file folder (found
    by an audit of pulls); now one statement for the whole listing."""
    folder = server.mkdir("/collect-left")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    for i in range(40):
        server.put(f"{folder}/Calls_2026_{i:03d}.csv", call_csv(2, prefix=f"l{i}"), old)
    pull_connection(services, server, folder, after_success="leave")
    first = services.pull("Partner FTP")
    assert first.files_loaded == 40
    from connectbatch.store import runs as run_store

    asked: list[str] = []
    original = run_store.files_where

    def counted(con: object, where: str, params: list[object]) -> object:
        asked.append(where)
        return original(con, where, params)  # type: ignore[arg-type]

    monkeypatch.setattr(run_store, "files_where", counted)

    again = services.pull("Partner FTP")

    assert again.files_loaded == 0 and services.count_actions("Partner FTP") == 80
    assert len([w for w in asked if "remote_path" in w]) == 1, asked  # was one per listed file
