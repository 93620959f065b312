"""Whether a run In Progress is still alive, judged by real processes: a `connectbatch ingest`
paused inside its run (after the ledger commit, before parsing), then left alone, killed
with SIGKILL, or run as "another host": a pid and UTS namespace of its own
(`unshare`), as a container sharing the store is.

- a run of this host whose process died is Failed at the next look, also when its pid now
  belongs to another, unrelated process (a reused pid kept it In Progress for ever);
- a run of another host is never judged by its pid here (which means nothing here): alive
  while its heartbeat is fresh, Failed once the heartbeat is older than STALE_SECONDS (a live
  run started in another container was Failed at once, its pid being absent here).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import call_csv

from connectbatch.errors import RunInProgressError
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store import liveness

REPO = Path(__file__).resolve().parents[2]

# The real CLI (`connectbatch ingest`), paused where the run and its file are committed: the
# parse's start (`progress.start`), inside the ingest's `held()` stretch, which keeps the
# file open unless another process waits for it (or, with "release", closed at once).
CHILD = r"""
import functools, os, sys, time
from pathlib import Path
from connectbatch.pipeline import progress
from connectbatch.store import db

marker = Path(sys.argv[1])
original = progress.start

@functools.wraps(original)
def paused(*args, **kwargs):
    original(*args, **kwargs)
    if sys.argv[3] == "release":
        db._release_all()
    written = marker.with_name(marker.name + ".tmp")  # the parent may read it the moment it exists
    written.write_text(str(os.getpid()))
    os.replace(written, marker)
    time.sleep(120)
    raise SystemExit("not killed")

progress.start = paused
from connectbatch.cli import main
sys.exit(main(["ingest", sys.argv[2], "--connection", "Acme"]))
"""

# A container: its own pid namespace (its pids start high, absent from ours) and host name.
OTHER_HOST = [
    "unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts",
    "sh", "-c", 'hostname other-host && echo 30000 > /proc/sys/kernel/ns_last_pid && "$0" "$@"',
]  # fmt: skip


def _other_host_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*OTHER_HOST, "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    services = Services(Settings(home=home, lock_timeout=20.0))
    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    services.db.release()
    return home


@pytest.fixture
def paused_ingest(home: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Start function: a `connectbatch ingest` child (optionally as another host) that waits
    inside its run; killed at the end if still there."""
    children: list[subprocess.Popen[bytes]] = []
    marker = tmp_path / "paused"

    def start(prefix: list[str] | None = None, hold: str = "release") -> subprocess.Popen[bytes]:
        upload = tmp_path / "a.csv"
        upload.write_bytes(call_csv(5))
        env = dict(
            os.environ,
            CONNECTBATCH_HOME=str(home),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        env.pop("CONNECTBATCH_DB", None)
        cmd = [*(prefix or []), sys.executable, "-c", CHILD, str(marker), str(upload), hold]
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        children.append(child)
        deadline = time.monotonic() + 60
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"the child ended first: {child.communicate()}")
            if time.monotonic() > deadline:
                pytest.fail("the child did not reach its run")
            time.sleep(0.02)
        return child

    yield start, marker  # type: ignore[misc]
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        child.communicate()


def _kill(child: subprocess.Popen[bytes]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)


def _services(home: Path) -> Services:
    return Services(Settings(home=home, lock_timeout=20.0))


def test_a_killed_run_whose_pid_another_process_now_has_is_failed(home: Path, paused_ingest: tuple) -> None:
    start, _marker = paused_ingest
    child = start()
    services = _services(home)
    assert services.startup() == []  # alive: left alone
    services.db.release()
    _kill(child)
    unrelated = subprocess.Popen(["sleep", "60"])  # the dead run's pid, used again
    try:
        [run] = services.runs("Acme")
        with services.db.transaction() as con:
            con.execute("UPDATE runs SET pid = ? WHERE id = ?", [unrelated.pid, run.id])
        assert services.startup() == [run.id]
    finally:
        unrelated.kill()
        unrelated.wait()
    assert services.run(run.id).status is RunStatus.FAILED


@pytest.mark.skipif(not _other_host_works(), reason="unshare (user, pid and UTS namespaces) unavailable")
def test_a_run_of_another_host_is_judged_by_its_heartbeat_not_by_a_pid_of_ours(
    home: Path, paused_ingest: tuple
) -> None:
    start, marker = paused_ingest
    child = start(OTHER_HOST)
    their_pid = int(marker.read_text())
    assert their_pid > 30000  # a pid of its namespace, not a process of ours
    services = _services(home)
    [run] = services.runs("Acme")
    assert run.status is RunStatus.IN_PROGRESS
    assert services.startup() == []  # was: Failed at once while the other host ran it
    services.db.release()
    time.sleep(0.3)
    assert services.run(run.id).status is RunStatus.IN_PROGRESS

    _kill(child)  # the other host dies: only its heartbeat can tell, once stale
    assert services.startup() == []
    old = dt.timedelta(seconds=liveness.STALE_SECONDS + 5)
    with services.db.transaction() as con:
        con.execute("UPDATE runs SET started_at = started_at - ? WHERE id = ?", [old, run.id])
        con.execute("UPDATE run_beats SET beat_at = beat_at - ?", [old])
    assert services.startup() == [run.id]
    failed = services.run(run.id)
    assert failed.status is RunStatus.FAILED and "interrupted" in (failed.reason or "")


@pytest.mark.skipif(not _other_host_works(), reason="unshare (user, pid and UTS namespaces) unavailable")
def test_a_process_of_another_host_gives_the_database_to_one_waiting_here(
    home: Path, paused_ingest: tuple
) -> None:
    """Its ingest keeps the file open between operations unless someone waits: our waiting
    marker names a pid of ours, absent there. It was removed there as a dead waiter's, and
    we timed out (DatabaseBusyError) while the other host's ingest went on."""
    start, _marker = paused_ingest
    start(OTHER_HOST, hold="hold")
    services = Services(Settings(home=home, lock_timeout=8.0))
    [run] = services.runs("Acme")
    assert run.status is RunStatus.IN_PROGRESS


def test_a_process_beats_while_it_has_runs_going_and_stops_after(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    """The heartbeat: a row of this process in `run_beats` while a run goes (a thread, no
    statement on any run's path), and no thread left once its runs are over."""
    acme = make_connection("Acme")
    heartbeat = liveness.Heartbeat(services.db, every=0.05)
    run = services.ingestor.start_run(acme, "cli")
    heartbeat.running()
    host, pid, start = liveness.me()

    def beats() -> list[tuple[object, ...]]:
        with services.db.connect() as con:
            return con.execute("SELECT host, pid, pid_start FROM run_beats").fetchall()

    _until(lambda: beats() == [(host, pid, start)], "a beat")
    services.ingestor.finish_run(run, failed_reason="test over")
    _until(lambda: heartbeat._thread is None, "the heartbeat to end")


def test_a_run_of_another_host_lives_as_long_as_its_process_beats(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    acme = make_connection("Acme")
    run = services.ingestor.start_run(acme, "cli")
    stale = dt.timedelta(seconds=liveness.STALE_SECONDS + 60)
    with services.db.transaction() as con:  # started long ago on another host, beating still
        con.execute(
            "UPDATE runs SET host = 'other-host', started_at = started_at - ? WHERE id = ?", [stale, run.id]
        )
        con.execute("INSERT INTO run_beats VALUES ('other-host', ?, ?, current_timestamp)", [run.pid, 0])
        con.execute("UPDATE runs SET pid_start = 0 WHERE id = ?", [run.id])
    assert services.startup() == []
    with pytest.raises(RunInProgressError):  # its connection is busy meanwhile
        services.ingestor.start_run(acme, "cli")
    with services.db.transaction() as con:  # it stopped beating
        con.execute("UPDATE run_beats SET beat_at = beat_at - ?", [stale])
    assert services.startup() == [run.id]


def _until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# The real CLI, paused when its copy into staging is written and not yet renamed into place
# (`staging/.incoming-<pid>-…`), until the `go` file appears.
CHILD_COPY = r"""
import functools, os, sys, time
from pathlib import Path
from connectbatch.pipeline import staging_copy

marker, go = Path(sys.argv[1]), Path(sys.argv[1] + ".go")
original = staging_copy.copy_hashing

@functools.wraps(original)
def paused(*args, **kwargs):
    size = original(*args, **kwargs)
    marker.write_text(str(os.getpid()))
    while not go.exists():
        time.sleep(0.02)
    return size

staging_copy.copy_hashing = paused
from connectbatch.cli import main
sys.exit(main(["ingest", sys.argv[2], "--connection", "Acme"]))
"""


@pytest.mark.skipif(not _other_host_works(), reason="unshare (user, pid and UTS namespaces) unavailable")
def test_a_copy_into_staging_another_host_is_making_is_left_alone(home: Path, tmp_path: Path) -> None:
    """Staging is shared in distributed mode. Every command (and `serve` every minute) removes
    the temporary copies a killed process left: one of another host was removed as a killed
    copy's, its pid being absent here, and that host's ingest then failed at staging."""
    marker, upload = tmp_path / "copied", tmp_path / "a.csv"
    upload.write_bytes(call_csv(5))
    env = dict(
        os.environ,
        CONNECTBATCH_HOME=str(home),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    cmd = [*OTHER_HOST, sys.executable, "-c", CHILD_COPY, str(marker), str(upload)]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _until(lambda: marker.exists() or child.poll() is not None, "the copy", timeout=60)
        services = _services(home)
        staging = services.settings.staging
        [copy] = list(staging.glob(".incoming-*"))
        assert services.startup() == []  # what every command does first
        assert copy.exists()
        services.db.release()
        Path(f"{marker}.go").touch()
        _out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    [run] = services.runs("Acme")
    assert run.status is RunStatus.COMPLETED, (run.reason, err.decode())


def test_the_heartbeat_of_a_database_without_run_beats_ends_without_a_warning_each_beat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in a fresh-clone CI run: a heartbeat left beating for an earlier test's database
    of an older schema (no `run_beats` table) logged "could not write the runs' heartbeat"
    every beat for STALE_SECONDS, into a later test's output. Such a database has nothing to
    beat into: the heartbeat ends, quietly."""
    from connectbatch.store import Database

    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        con.execute("DROP TABLE run_beats")  # as a database of a release before it
    heartbeat = liveness.Heartbeat(db, every=0.05)
    heartbeat.running()
    deadline = time.monotonic() + 10
    while heartbeat._thread is not None:
        assert time.monotonic() < deadline, "the heartbeat never ended"
        time.sleep(0.02)
    assert "could not write the runs' heartbeat" not in caplog.text
