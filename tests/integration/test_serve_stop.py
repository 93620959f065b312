"""Scheduled pulls in the engine (`connectbatch serve`, the app's engine) that cannot get
through, against real sockets on 127.0.0.1: stopping while one is in flight must end, and
each must leave a Failed run a person can see and retry."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from cryptography.fernet import Fernet
from helpers.clock import Clock as HandClock
from helpers.ports import free_port

from connectbatch.engine import Engine
from connectbatch.models import Connection, Direction, Method, Methodology, Run, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.pull import stopping
from connectbatch.transfer.specs import FtpSpec, FtpTls, ImapSecurity, ImapSpec, SftpSpec


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: a pull to it fails at once, before seeing any file."""
    return free_port()


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A server that accepts TCP connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    done.set()
    thread.join(5)
    for s in accepted:
        s.close()
    listener.close()


def ftp_pull(services: Services, port: int) -> Connection:
    draft = Connection(
        "Partner FTP", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host="127.0.0.1", port=port, folder="/", pattern="*.csv", schedule="0 0 1 1 *",
        transfer=FtpSpec(tls=FtpTls.NONE),
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", "bob", "pw-never-logged-1"))
    return created


def fire_now(engine: Engine, connection: Connection) -> None:
    """The connection's cron job, due now: run by APScheduler's own executor as in `serve`."""
    engine.scheduler._scheduler.modify_job(f"pull-{connection.id}", next_run_time=dt.datetime.now(dt.UTC))


def test_stopping_while_a_scheduled_pull_fails_does_not_hang(services: Services, closed_port: int) -> None:
    """A scheduled pull that failed without seeing a file schedules its retry; stopping while
    it ran deadlocked: APScheduler's shutdown holds the job store's lock while it waits for
    the running job, and the job waited for that lock to add the retry. `serve` never ended
    (SIGTERM did nothing; only SIGKILL)."""
    connection = ftp_pull(services, closed_port)
    started, release = threading.Event(), threading.Event()
    runs: list[Run | None] = []
    engine = Engine(services)

    def gated(c: Connection, trigger: str) -> Run | None:
        started.set()
        release.wait(10)
        runs.append(services.scheduled_pull(c.id))
        return runs[-1]

    engine.scheduler._pull = gated
    engine.start(servers=False)
    fire_now(engine, connection)
    assert started.wait(10)
    stopper = threading.Thread(target=engine.stop, daemon=True)
    stopper.start()
    release.set()
    stopper.join(15)

    assert not stopper.is_alive(), "the engine did not stop"
    [run] = runs
    assert run is not None and run.status is RunStatus.FAILED and run.files_seen == 0
    assert "127.0.0.1" in (run.reason or "")


@pytest.fixture
def slamming_port() -> Iterator[tuple[int, list[int]]]:
    """A server that accepts each TCP connection and closes it at once; counts them."""
    listener = socket.create_server(("127.0.0.1", 0))
    count = [0]
    done = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                listener.accept()[0].close()
                count[0] += 1
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1]), count
    done.set()
    thread.join(5)
    listener.close()


def test_a_scheduled_pull_that_cannot_log_in_connects_once(
    services: Services, slamming_port: tuple[int, list[int]]
) -> None:
    """The scheduled poll looks first (to record nothing when nothing is new); when that
    failed, the run connected again to meet the same error: against a server that never
    answers a run took two timeouts (60 s) while its message said 30 s."""
    port, connections = slamming_port
    connection = ftp_pull(services, port)

    run = services.scheduled_pull(connection.id)

    assert run is not None and run.status is RunStatus.FAILED and run.files_seen == 0
    assert f"127.0.0.1:{port}" in (run.reason or "")
    assert connections[0] == 1
    [credential] = services.credentials(connection.id)
    assert credential.status == "Error" and credential.last_error


def test_a_scheduled_pull_whose_login_the_key_cannot_open_leaves_a_failed_run(
    settings: Settings, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The secret key changed (a new CONNECTBATCH_SECRET_KEY, a lost secret.key): the stored
    login cannot be decrypted. A scheduled pull raised before any run existed, so `serve`
    only logged a traceback ("scheduled run crashed") and the connection's history showed
    nothing: its pulls stopped without a word. Now the run is Failed with the reason, and no
    secret is in it or in the log."""
    connection = ftp_pull(Services(settings), closed_port)
    rotated = Services(replace(settings, secret_key=Fernet.generate_key().decode()))
    engine = Engine(rotated)

    engine.scheduler._scheduled(connection.id, 0)

    [run] = rotated.runs(connection.id)
    assert run.status is RunStatus.FAILED and "cannot be decrypted" in (run.reason or "")
    assert "crashed" not in caplog.text and "pw-never-logged-1" not in caplog.text


SILENT_CASES = {
    "ftp": (Method.FTP, FtpSpec(tls=FtpTls.NONE)),
    "ftps-implicit": (Method.FTP, FtpSpec(tls=FtpTls.IMPLICIT)),  # held in the TLS handshake
    "sftp": (Method.SFTP, SftpSpec()),
    "imap": (Method.EMAIL, ImapSpec(security=ImapSecurity.PLAIN)),
    "imaps": (Method.EMAIL, ImapSpec(security=ImapSecurity.SSL)),  # held in the TLS handshake
}


@pytest.mark.parametrize("case", SILENT_CASES)
def test_stopping_ends_a_pull_waiting_on_a_silent_server_at_once(
    services: Services, hung_port: int, case: str
) -> None:
    """The known slow stop: a server that accepts the connection and never answers held
    `serve`'s SIGTERM for the pull's timeouts (30 s a step). The stop now ends the pull at
    once, and its run is Failed saying it was stopped, to retry; the login is not marked."""
    method, spec = SILENT_CASES[case]
    draft = Connection(
        "Silent", "call_conversions", Direction.INBOUND, method, Methodology.PULL, host="127.0.0.1",
        port=hung_port, folder="/" if method is not Method.EMAIL else "INBOX", pattern="*.csv",
        schedule="0 0 1 1 *", transfer=spec,
    )  # fmt: skip
    connection, _ = services.create_connection(draft, CredentialInput("partner", "bob", "pw-never-logged-1"))
    engine = Engine(services)
    engine.start(servers=False)
    started = time.monotonic()
    fire_now(engine, connection)
    while not stopping._pulls and time.monotonic() - started < 10:  # the pull is waiting
        time.sleep(0.05)
    time.sleep(0.5)

    stop_at = time.monotonic()
    engine.stop()

    assert time.monotonic() - stop_at < 5
    [run] = services.runs(connection.id)
    assert run.status is RunStatus.FAILED and run.reason == stopping.STOPPED
    [credential] = services.credentials(connection.id)
    assert credential.status != "Error"


def test_a_pull_whose_time_passed_while_the_server_was_down_runs_once_at_start(
    settings: Settings, closed_port: int
) -> None:
    """Jobs live in memory: a connection due every 1 January at 00:00, created the December
    before, whose time came while nothing ran, waited for the next year. At start it now
    runs once (not once per missed time); one created since its last due time does not."""
    clock = HandClock(dt.datetime(2025, 12, 1, tzinfo=dt.UTC))
    services = Services(settings, clock=clock)
    missed = ftp_pull(services, closed_port)
    clock.now = dt.datetime.now(dt.UTC)
    draft = replace(missed, id=None, name="Created since")
    recent, _ = services.create_connection(draft, CredentialInput("partner", "bob", "pw-never-logged-1"))
    engine = Engine(Services(settings))
    engine.start(servers=False)
    try:
        deadline = time.monotonic() + 10
        while not services.runs(missed.id) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        [run] = services.runs(missed.id)
        assert run.trigger == "schedule" and run.status is RunStatus.FAILED
        assert services.runs(recent.id) == []
    finally:
        engine.stop()
