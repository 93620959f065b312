"""Faults never look like success, and files at rest are the service user's only.

Each test damages something the way a disk, a kill or a careless operator would (a truncated
or deleted staged copy, a full disk at staging and at commit, a killed copy's temporary file,
an interrupted pull run, a push upload whose staging the full disk stopped) and checks the
run ends Failed with the step and the cause, no partial rows are committed, and the way back
(retry, or a fresh delivery) loads everything.
The full-disk cases use a small tmpfs as the data folder (root only; skipped otherwise).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ftpd
import paramiko
import pytest
from helpers import call_csv
from helpers.store import count

from connectbatch.cli import main
from connectbatch.cli.common import EXIT_BUSY, EXIT_OK, EXIT_RUN_FAILED, EXIT_UNUSABLE
from connectbatch.models import Connection, Direction, Method, Methodology, ReviewState, RunStatus
from connectbatch.pipeline import staging
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.store import data as data_store
from connectbatch.store import liveness
from connectbatch.store.anchor import node_tag
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path
from connectbatch.transfer.specs import FtpSpec, FtpTls

ROWS = 2_000
MakeConnection = Any


def _file(tmp_path: Path, rows: int = ROWS, name: str = "Acme_calls.csv", **kw: Any) -> Path:
    path = tmp_path / name
    path.write_bytes(call_csv(rows, **kw))
    return path


@contextlib.contextmanager
def _load_breaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The load transaction fails once rows are in (a crash the process survives)."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated failure inside the load transaction")

    with monkeypatch.context() as m:
        m.setattr(data_store, "insert_rows", broken)
        yield


def _failed_run_with_staged_copy(
    services: Services, monkeypatch: pytest.MonkeyPatch, path: Path
) -> tuple[int, Path]:
    with _load_breaks(monkeypatch):
        run = services.ingest_file("Acme", path)
    assert run.status is RunStatus.FAILED
    staged = services.settings.staging / hashlib.sha256(path.read_bytes()).hexdigest()
    assert staged.exists()
    return run.id, staged


# ------------------------------------------------------------------ damaged staged copies


def test_a_truncated_staged_copy_fails_the_retry_and_a_good_redelivery_loads_everything(
    services: Services, make_connection: MakeConnection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_connection("Acme")
    path = _file(tmp_path)
    run_id, staged = _failed_run_with_staged_copy(services, monkeypatch, path)
    data = staged.read_bytes()
    staged.write_bytes(data[: len(data) // 3])  # a damaged disk, a killed copy

    retried = services.retry(run_id)
    assert retried.status is RunStatus.FAILED  # was Completed with a third of the rows
    assert "sha256 mismatch" in (retried.reason or "") and str(staged) in (retried.reason or "")
    [f] = services.run_files(retried.id)
    assert f.state == "failed" and "sha256 mismatch" in (f.message or "")
    assert count(services, "call_conversions") == 0

    again = services.ingest_file("Acme", path)  # the partner sends the file again
    assert again.status is RunStatus.COMPLETED, again.reason
    assert again.rows_accepted == ROWS  # read from the fresh bytes, not the damaged copy
    assert count(services, "call_conversions") == ROWS
    assert staged.read_bytes() == data  # the damaged copy was replaced
    assert "load (commit) failed: RuntimeError" in (services.run(run_id).reason or "")  # step named


def test_a_deleted_staged_copy_fails_the_retry(
    services: Services,
    make_connection: MakeConnection,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_connection("Acme")
    run_id, staged = _failed_run_with_staged_copy(services, monkeypatch, _file(tmp_path))
    staged.unlink()

    monkeypatch.setenv("CONNECTBATCH_HOME", str(services.settings.home))
    assert main(["retry", str(run_id)]) == EXIT_RUN_FAILED  # was Completed, exit 0
    out = capsys.readouterr().out
    assert "Failed" in out and "is gone" in out
    [latest, _] = services.runs("Acme")
    assert latest.status is RunStatus.FAILED and str(staged) in (latest.reason or "")
    assert count(services, "call_conversions") == 0


# ------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs as the data folder (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of the file system, as a runaway log or another tenant would."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for block in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        (disk / "probe").write_bytes(b"x" * 8192)
    assert full.value.errno == errno.ENOSPC
    return filler


def _disk_services(disk: Path) -> Services:
    services = Services(Settings(home=disk / "home", lock_timeout=10.0))
    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    return services


def test_a_full_disk_at_commit_fails_the_run_with_its_cause_and_retry_loads_after_space_returns(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = _disk_services(small_disk)
    path = _file(tmp_path)
    original = data_store.insert_rows
    fillers: list[Path] = []

    def fill_then_insert(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        fillers.append(_fill(small_disk))  # the commit that follows finds no room

    with monkeypatch.context() as m:
        m.setattr(data_store, "insert_rows", fill_then_insert)
        run = services.ingest_file("Acme", path)

    # was: left In Progress, exit 3 "internal error", later "interrupted" (cause lost)
    assert run.status is RunStatus.FAILED
    assert "load (commit) failed" in (run.reason or "")
    assert "No space left on device" in (run.reason or "")
    [f] = services.run_files(run.id)
    assert f.state == "failed" and "No space left" in (f.message or "")
    assert count(services, "call_conversions") == 0 and services.count_actions() == 0

    fillers[0].unlink()  # space returns
    assert services.startup() == []  # nothing left In Progress to recover
    retried = services.retry(run.id)
    assert retried.status is RunStatus.COMPLETED, retried.reason
    assert retried.rows_accepted == ROWS and count(services, "call_conversions") == ROWS
    assert services.db.reserve_path.exists()  # the reserve is back for the next full disk


def test_a_full_disk_while_staging_records_the_attempt_and_a_redelivery_loads(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = _disk_services(small_disk)
    path = _file(tmp_path)
    original = staging.stage
    fillers: list[Path] = []

    def fill_then_stage(staging_dir: Path, source: Path, move: bool = False) -> staging.Staged:
        fillers.append(_fill(small_disk))
        return original(staging_dir, source, move)

    with monkeypatch.context() as m:
        m.setattr(staging, "stage", fill_then_stage)
        monkeypatch.setenv("CONNECTBATCH_HOME", str(services.settings.home))
        code = main(["ingest", str(path), "--connection", "Acme"])

    assert code == EXIT_RUN_FAILED  # was 2 (bad input) with no file recorded
    [run] = services.runs("Acme")
    assert run.status is RunStatus.FAILED
    assert "staging failed" in (run.reason or "") and "No space left on device" in (run.reason or "")
    assert str(services.settings.staging) in (run.reason or "")
    [f] = services.run_files(run.id)
    assert (f.name, f.state, f.size) == (path.name, "failed", path.stat().st_size)
    assert not list(services.settings.staging.glob(".incoming-*"))
    assert count(services, "call_conversions") == 0

    fillers[0].unlink()
    retried = services.retry(run.id)  # nothing was staged: said so, not a silent success
    assert retried.status is RunStatus.FAILED and "never staged" in (retried.reason or "")
    # an upload to our servers is not sent again: it waits there, taken in again by itself (audit)
    assert "upload to our SFTP/FTP server: that one stays there and is taken in again" in (
        retried.reason or ""
    )
    again = services.ingest_file("Acme", path)
    assert again.status is RunStatus.COMPLETED and again.rows_accepted == ROWS


# ------------------------------------------------------------------ an interrupted pull run


@pytest.fixture(scope="module")
def ftp_server() -> Iterator[ftpd.FtpServer]:
    with ftpd.any_server() as found:
        yield found


def test_retry_of_a_pull_run_reprocesses_its_unfinished_files_only(
    services: Services, ftp_server: ftpd.FtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = ftp_server.mkdir("/faults-pull")
    now = dt.datetime.now(dt.UTC)
    ftp_server.put(f"{folder}/Calls_2026_a.csv", call_csv(7, prefix="a"), now - dt.timedelta(hours=1))
    ftp_server.put(f"{folder}/Calls_2026_b.csv", call_csv(3, prefix="b"), now)  # too young: skipped
    draft = Connection(
        "Partner FTP", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host=ftp_server.host, port=ftp_server.port, folder=folder, pattern="Calls_2026_*.csv",
        min_age_seconds=300, transfer=FtpSpec(tls=FtpTls.NONE),  # the test server is plain FTP
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", ftp_server.username, ftp_server.password))
    with _load_breaks(monkeypatch):
        failed = services.pull("Partner FTP")
    assert failed.status is RunStatus.FAILED
    states = {f.name: (f.state, f.sha256 != "") for f in services.run_files(failed.id)}
    assert states == {"Calls_2026_a.csv": ("failed", True), "Calls_2026_b.csv": ("skipped", False)}

    retried = services.retry(failed.id)  # was: [Errno 21] Is a directory: .../staging
    assert retried.status is RunStatus.COMPLETED, retried.reason
    assert [(f.name, f.state) for f in services.run_files(retried.id)] == [("Calls_2026_a.csv", "loaded")]
    assert services.count_actions("Partner FTP") == 7
    assert all(r.status is not RunStatus.IN_PROGRESS for r in services.runs("Partner FTP"))
    with pytest.raises(Exception, match="only failed runs"):
        services.retry(retried.id)


# ------------------------------------------------------------------ a killed process


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _set_pid(services: Services, run_id: int, pid: int) -> None:
    """The run as process `pid` of this host records it: its pid and its start time."""
    with services.db.transaction() as con:
        con.execute(
            "UPDATE runs SET pid = ?, pid_start = ? WHERE id = ?", [pid, liveness.process_start(pid), run_id]
        )


def test_every_command_recovers_dead_runs_and_removes_a_killed_copys_temporary_file(
    services: Services, make_connection: MakeConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = make_connection("Acme")
    run = services.ingestor.start_run(acme, "cli")
    dead = _dead_pid()
    _set_pid(services, run.id, dead)
    incoming = services.settings.staging
    incoming.mkdir(parents=True, exist_ok=True)
    killed = incoming / f".incoming-{dead}-{node_tag()}-abc123"
    older = incoming / f".incoming-{dead}-abc123"  # named before copies carried their host
    legacy = incoming / ".incoming-q1w2e3"  # named before copies carried their pid
    theirs = incoming / f".incoming-{dead}-0123456789ab-ghi789"  # another host's, being written
    left = incoming / f".incoming-{dead}-0123456789ab-jkl012"  # another host's, long untouched
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        busy = incoming / f".incoming-{live.pid}-{node_tag()}-def456"
        for path in (killed, older, legacy, theirs, left, busy):
            path.write_bytes(b"partial copy")
        long_ago = time.time() - liveness.STALE_SECONDS - 1
        os.utime(left, (long_ago, long_ago))
        monkeypatch.setenv("CONNECTBATCH_HOME", str(services.settings.home))
        assert main(["runs"]) == EXIT_OK  # any command, not only retry or serve
        live.kill()
    assert not killed.exists() and not older.exists() and not legacy.exists() and not left.exists()
    assert busy.exists() and theirs.exists()  # a live process's copy in progress is left alone
    recovered = services.run(run.id)
    assert recovered.status is RunStatus.FAILED and "interrupted" in (recovered.reason or "")


def test_busy_and_bad_input_have_distinct_exit_codes(
    services: Services,
    make_connection: MakeConnection,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    acme = make_connection("Acme")
    path = _file(tmp_path, 5)
    monkeypatch.setenv("CONNECTBATCH_HOME", str(services.settings.home))
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        run = services.ingestor.start_run(acme, "cli")
        _set_pid(services, run.id, other.pid)  # another live process has a run going on
        assert main(["ingest", str(path), "--connection", "Acme"]) == EXIT_BUSY  # was 2
        assert "still in progress" in capsys.readouterr().err
        other.kill()
    assert main(["ingest", str(tmp_path / "missing.csv"), "--connection", "Acme"]) == EXIT_UNUSABLE
    assert EXIT_BUSY == 75 and len({EXIT_OK, EXIT_RUN_FAILED, EXIT_UNUSABLE, EXIT_BUSY, 3}) == 5


# ------------------------------------------------------------------ files at rest


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_folder_files_are_the_service_users_only(
    services: Services, make_connection: MakeConnection, tmp_path: Path
) -> None:
    make_connection("Acme")
    good = services.ingest_file("Acme", _file(tmp_path, 10))
    bad_rows = {i: {"CampaignId": "x1"} for i in range(4)}  # 40 % rejected: held for review
    held = services.ingest_file("Acme", _file(tmp_path, 10, "held.csv", prefix="h", overrides=bad_rows))
    assert good.status is RunStatus.COMPLETED and held.review is ReviewState.QUARANTINED
    _ = services.box  # the secret key
    home = services.settings.home
    folders = [home, home / "staging", home / "outbound", home / "runs", *(home / "outbound").iterdir(),
               *(home / "runs").iterdir()]  # fmt: skip
    for folder in folders:
        assert _mode(folder) == 0o700, folder
    files = [services.settings.database, services.settings.key_file, services.db.reserve_path,
             *(home / "staging").iterdir(), *(home / "outbound").rglob("*.*"),
             *(home / "runs").rglob("*.*")]  # fmt: skip
    assert len(files) > 6
    for f in files:
        if f.is_file():
            assert _mode(f) == 0o600, f


# ------------------------------------------------------------------ staging retention


def test_retention_removes_old_staged_files_but_not_those_still_needed(
    services: Services, make_connection: MakeConnection, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    make_connection("Acme")
    loaded = _file(tmp_path, 10)
    recent = _file(tmp_path, 10, "recent.csv", prefix="r")
    bad_rows = {i: {"CampaignId": "x1"} for i in range(4)}
    held = _file(tmp_path, 10, "held.csv", prefix="h", overrides=bad_rows)
    for path in (loaded, recent, held):
        services.ingest_file("Acme", path)
    staged = {
        p: services.settings.staging / hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (loaded, recent, held)
    }
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).timestamp()
    for path in (loaded, held):
        os.utime(staged[path], (old, old))

    monkeypatch.setenv("CONNECTBATCH_HOME", str(services.settings.home))
    assert main(["cleanup", "--json"]) == EXIT_OK
    removed = [r["sha256"] for r in json.loads(capsys.readouterr().out)]
    assert removed == [staged[loaded].name]
    assert not staged[loaded].exists()
    assert staged[held].exists()  # its quarantined batch may still be retried or reviewed
    assert staged[recent].exists()
    with services.db.connect() as con:
        rows = con.execute("SELECT sha256, size, reason FROM staging_removals").fetchall()
    assert rows == [(staged[loaded].name, loaded.stat().st_size, "retention: unused for more than 30 days")]


def test_retry_of_a_pull_that_never_reached_the_server_pulls_again(
    services: Services, ftp_server: ftpd.FtpServer
) -> None:
    """The server was down (nothing fetched, nothing staged): retry fetches what the run did not."""
    folder = ftp_server.mkdir("/faults-down")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    ftp_server.put(f"{folder}/Calls_2026_c.csv", call_csv(5, prefix="c"), old)
    draft = Connection(
        "Down FTP", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host=ftp_server.host, port=ftpd.free_port(), folder=folder, pattern="Calls_2026_*.csv",
        transfer=FtpSpec(tls=FtpTls.NONE),
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", ftp_server.username, ftp_server.password))
    failed = services.pull("Down FTP")
    assert failed.status is RunStatus.FAILED and "connection refused" in (failed.reason or "")
    services.update_connection("Down FTP", port=ftp_server.port)  # the partner's server is back

    retried = services.retry(failed.id)
    assert (retried.status, retried.trigger, retried.rows_accepted) == (RunStatus.COMPLETED, "retry", 5)
    assert services.count_actions("Down FTP") == 5


def test_a_push_upload_the_full_disk_kept_from_staging_stays_and_is_taken_in_once_there_is_room(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = Services(Settings(home=small_disk / "home", lock_timeout=10.0, sftp_port=0, ftp_port=0))
    connection, login = services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    assert login is not None
    gateway = Gateway(services)
    server = HostedSftpServer(gateway, "127.0.0.1", 0, host_key_path(services.settings.home)).start()
    original = staging.stage
    fillers: list[Path] = []

    def fill_then_stage(staging_dir: Path, source: Path, move: bool = False) -> staging.Staged:
        fillers.append(_fill(small_disk))
        return original(staging_dir, source, move)

    try:
        transport = paramiko.Transport(("127.0.0.1", server.port))
        transport.connect(username=login.username, password=login.password)
        with monkeypatch.context() as m, contextlib.closing(transport):
            m.setattr(staging, "stage", fill_then_stage)
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            sftp.putfo(io.BytesIO(call_csv(ROWS)), "Acme_calls.csv")  # the partner has its answer
            gateway.wait(timeout=60)
        [failed] = services.runs("Acme")
        assert failed.status is RunStatus.FAILED and "No space left on device" in (failed.reason or "")
        upload = services.settings.home / "push" / str(connection.id) / "Acme_calls.csv"
        assert upload.exists()  # was removed: the bytes were nowhere, retry said "send it again"

        fillers[0].unlink()  # space returns; the hourly replay (or the next start) takes it in
        [again] = [future.result(timeout=60) for future in gateway.replay()]
    finally:
        server.stop()
        gateway.close()
    assert again is not None and again.status is RunStatus.COMPLETED, again
    assert again.rows_accepted == ROWS and count(services, "call_conversions") == ROWS
    assert not upload.exists()
    assert gateway.replay() == []  # taken in once


def test_a_results_file_that_cannot_be_written_is_said_in_the_connections_history(tmp_path: Path) -> None:
    """The load committed, then the results file could not be written (a full disk): the run
    said Completed, `ingest` exited 0 and the only trace was a log line the CLI never shows;
    the partner never got an answer and no one knew."""
    services = Services(Settings(home=tmp_path / "home"))
    connection, _ = services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    services.settings.outbound.mkdir(parents=True, exist_ok=True)
    (services.settings.outbound / str(connection.id)).write_bytes(b"")  # a file where the folder goes

    run = services.ingest_bytes("Acme", "calls.csv", call_csv(3))
    assert run.status is RunStatus.COMPLETED and services.count_actions("Acme") == 3  # loaded all the same
    [event] = services.connection_events("Acme")
    assert event.kind == "results_not_written"
    assert f"run {run.id}: calls.csv was loaded, but its results file could not be written" in event.message
