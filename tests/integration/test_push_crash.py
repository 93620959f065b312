"""A push upload our server answered is never lost to our own process dying or failing.

A hosted server answers a finished upload (SFTP close) before the gateway takes it in. The
child process here serves SFTP with a real gateway whose ingest stops at its start (a marker
file, then it waits to be killed): the partner's client has had its answer, nothing is
recorded yet. After the SIGKILL, a real engine starts on the same data folder and takes both
uploads in (the one being ingested and the one queued behind it), each loaded once, and the
push folder is left empty. An upload whose ingest failed (the database busy) is taken in by
the gateway's next look, also when the client set the file's time after the upload.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest
from helpers import call_csv
from helpers.ports import free_port

from connectbatch.engine import Engine
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.pipeline import staging
from connectbatch.services import Provisioned, Services
from connectbatch.settings import Settings
from connectbatch.store import DatabaseBusyError
from connectbatch.transfer.push.completed import FOLDER
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.partials import LOADING, sweep_partials
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys, time
from pathlib import Path
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

home, marker = Path(sys.argv[1]), Path(sys.argv[2])
services = Services(Settings(home=home, lock_timeout=10.0, sftp_port=0, ftp_port=0))

def stopped(*args, **kwargs):
    marker.write_text("taking in")  # the partner has its answer, nothing is recorded: kill me
    time.sleep(120)

services.ingest_files = stopped
server = HostedSftpServer(Gateway(services), "127.0.0.1", 0, host_key_path(home)).start()
print(server.port, flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def _sftp(port: int, login: Provisioned) -> Iterator[paramiko.SFTPClient]:
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(username=login.username, password=login.password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        yield sftp
    finally:
        transport.close()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_uploads_answered_before_a_killed_server_took_them_in_are_taken_in_at_its_next_start(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    services = Services(Settings(home=home, lock_timeout=10.0, sftp_port=0, ftp_port=0))
    connection, login = services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    assert login is not None
    services.db.release()  # the child opens the file
    marker = tmp_path / "taking-in"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home), str(marker)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with _sftp(port, login) as sftp:
            sftp.putfo(io.BytesIO(call_csv(3, prefix="a")), "a.csv")  # answered: closed without error
            _wait(marker.exists, "the ingest of a.csv to start")
            sftp.putfo(io.BytesIO(call_csv(2, prefix="b")), "b.csv")  # queued behind it
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    push_home = home / "push" / str(connection.id)
    assert sorted(p.name for p in push_home.iterdir()) == ["a.csv", "b.csv"]
    assert services.runs("Acme") == []  # was: never recorded, swept away a day later

    settings = Settings(home=home, lock_timeout=10.0, sftp_port=free_port(), ftp_port=0)
    engine = Engine(Services(settings))
    engine.start()
    try:
        _wait(lambda: len(services.runs("Acme")) == 2 and not list(push_home.iterdir()), "both uploads")
    finally:
        engine.stop()
    runs = services.runs("Acme")
    assert [r.status for r in runs] == [RunStatus.COMPLETED, RunStatus.COMPLETED]
    assert sorted(r.rows_accepted for r in runs) == [2, 3]
    assert services.count_actions("Acme") == 5
    assert not list((home / "push" / FOLDER).glob("*.json"))  # each note went with its upload
    # the killed ingest's second name of a.csv went at the start (it stayed a day, the sweep's grace)
    assert not list((home / "push" / LOADING).rglob("*.csv"))


def test_an_upload_whose_ingest_failed_is_taken_in_again_even_after_the_client_set_its_time(
    tmp_path: Path,
) -> None:
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0, sftp_port=0, ftp_port=0))
    _connection, login = services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    assert login is not None
    gateway = Gateway(services)
    server = HostedSftpServer(gateway, "127.0.0.1", 0, host_key_path(services.settings.home)).start()
    ingest = services.ingest_files

    def busy(*args: object, **kwargs: object) -> object:
        raise DatabaseBusyError("the database is in use by another process (PID 1, test)")

    try:
        services.ingest_files = busy  # type: ignore[method-assign]
        with _sftp(server.port, login) as sftp:
            sftp.putfo(io.BytesIO(call_csv(4)), "kept.csv")
            gateway.wait(timeout=30)
            sftp.utime("kept.csv", (1_000_000_000, 1_000_000_000))  # as WinSCP or `sftp -p` do
        assert services.runs("Acme") == []
        # the hourly sweep of broken uploads comes first: the noted upload is not one, however
        # old the time its client gave it (it removed it, and the partner's file was lost)
        sweep_partials(services.settings.home / "push", 24 * 3600)
        services.ingest_files = ingest  # type: ignore[method-assign]
        [run] = [future.result(timeout=30) for future in gateway.replay()]  # as hourly
    finally:
        server.stop()
        gateway.close()
    assert run is not None and run.status is RunStatus.COMPLETED and run.rows_accepted == 4


CHILD_RECORDED = r"""
import sys, time
from pathlib import Path
from connectbatch.pipeline import progress
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store import db
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

home, marker = Path(sys.argv[1]), Path(sys.argv[2])
services = Services(Settings(home=home, lock_timeout=10.0, sftp_port=0, ftp_port=0))

def paused(*args, **kwargs):
    db._release_all()
    marker.write_text("recorded")  # the run and its file are committed, nothing loaded: kill me
    time.sleep(120)

progress.start = paused
server = HostedSftpServer(Gateway(services), "127.0.0.1", 0, host_key_path(home)).start()
print(server.port, flush=True)
time.sleep(120)
"""


def _killed_after_recording(tmp_path: Path, home: Path) -> tuple[Services, Connection]:
    """Connection Acme, whose upload `a.csv` (3 rows) a child `serve` recorded (its run and
    ledger entry committed) and was killed with SIGKILL before loading."""
    services = Services(Settings(home=home, lock_timeout=10.0, sftp_port=0, ftp_port=0))
    connection, login = services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    assert login is not None
    services.db.release()
    marker = tmp_path / "recorded"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_RECORDED, str(home), str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with _sftp(port, login) as sftp:
            sftp.putfo(io.BytesIO(call_csv(3, prefix="a")), "a.csv")
        _wait(marker.exists, "the ingest of a.csv to be recorded")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return services, connection


def test_an_upload_whose_ingest_was_killed_after_its_ledger_commit_is_taken_in_as_its_runs_retry(
    tmp_path: Path,
) -> None:
    """Killed after the upload's run and ledger entry committed: the next start fails that run
    ("interrupted") and takes the upload in again. The new run is that run's retry (the history
    pairs them, as a person's retry does: no Failed run left open for one upload, no retry
    offered for it), and the upload is loaded once. It was a new run of its own, beside a
    Failed run still offering a retry."""
    home = tmp_path / "home"
    services, connection = _killed_after_recording(tmp_path, home)
    [interrupted] = services.runs("Acme")
    assert interrupted.status is RunStatus.IN_PROGRESS

    settings = Settings(home=home, lock_timeout=10.0, sftp_port=free_port(), ftp_port=0)
    engine = Engine(Services(settings))
    engine.start()
    push_home = home / "push" / str(connection.id)
    try:
        _wait(lambda: len(services.runs("Acme")) == 2 and not list(push_home.iterdir()), "the upload")
    finally:
        engine.stop()
    again, failed = services.runs("Acme")
    assert failed.id == interrupted.id and failed.status is RunStatus.FAILED
    assert "interrupted" in (failed.reason or "")
    assert again.status is RunStatus.COMPLETED and again.rows_accepted == 3
    assert again.retry_of == interrupted.id  # was None: a stray Failed run beside it
    assert services.count_actions("Acme") == 3


def test_uploads_taken_in_together_are_each_the_retry_of_the_run_a_dead_process_left(tmp_path: Path) -> None:
    """The same through a group commit (several uploads waiting together): the upload a dead
    process had recorded comes back as its run's retry, the other as a run of its own."""
    services = Services(Settings(home=tmp_path / "home", lock_timeout=10.0, sftp_port=0, ftp_port=0))
    connection, _ = services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(call_csv(3, prefix="a"))
    b.write_bytes(call_csv(2, prefix="b"))
    run = services.ingestor.start_run(connection, "push")  # as a killed process left it
    staged = staging.stage(services.settings.staging, a)
    staging.record(services.db, run, connection, staging.Received(a.name, a, "sftp"), staged)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with services.db.transaction() as con:
        con.execute("UPDATE runs SET pid = ?, pid_start = 0 WHERE id = ?", [dead.pid, run.id])
    assert services.startup() == [run.id]

    again = services.ingest_files("Acme", [a, b], "push")
    assert [r.status for r in again] == [RunStatus.COMPLETED, RunStatus.COMPLETED]
    assert [r.retry_of for r in again] == [run.id, None]
    assert services.count_actions("Acme") == 5


def test_an_upload_taken_in_again_before_the_dead_run_was_failed_is_still_its_retry(
    tmp_path: Path,
) -> None:
    """Crash audit: `serve` restarted at once took the killed ingest's upload in before its
    recovery had failed the dead run (the dead process not yet reaped, or the intake quicker),
    so the new run was no one's retry and a Failed run kept offering a retry for an upload
    already loaded. Recovery, when it fails the dead run, now links the run that took its
    bytes in. Here the intake comes first on purpose, then the recovery."""
    home = tmp_path / "home"
    services, connection = _killed_after_recording(tmp_path, home)
    [dead] = services.runs("Acme")
    upload = next((home / "push" / str(connection.id)).rglob("a.csv"))

    [again] = services.ingest_files(connection.id, [upload], trigger="push")  # before any recovery
    assert again.status is RunStatus.COMPLETED and again.retry_of is None
    assert services.startup() == [dead.id]

    assert services.run(again.id).retry_of == dead.id
    assert services.count_actions("Acme") == 3
