"""Another process holding the DuckDB file: a Services call waits for it, or, past the lock
timeout, fails with DatabaseBusyError naming the process that holds the file. And while
`serve` runs, a run a killed process left In Progress becomes Failed within a minute."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import call_csv

from connectbatch import engine as engine_module
from connectbatch.engine import Engine
from connectbatch.models import RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store import DatabaseBusyError

# The holder waits for the test process to close the file first: the test's own operations
# keep it open for a moment after they end (Database.linger).
HOLDER = r"""
import sys, time
import duckdb
deadline = time.monotonic() + 10
while True:
    try:
        con = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == "read_only")
        break
    except duckdb.IOException:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
print("released", flush=True)
"""


def _hold(database: Path, seconds: float, mode: str = "read_write") -> subprocess.Popen[str]:
    """Start a process that opens the file and keeps it for `seconds`; return once it holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database), str(seconds), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if line.strip() != "holding":
        holder.kill()
        _, err = holder.communicate()
        pytest.fail(f"the holder could not open the database: {line}{err}")
    return holder


def _stop(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        holder.kill()
    holder.communicate(timeout=30)


def test_a_call_waits_for_the_other_process_and_then_succeeds(services: Services, make_connection) -> None:
    make_connection("Acme")
    data = call_csv(10)
    holder = _hold(services.settings.database, 2.0)
    try:
        started = time.monotonic()
        run = services.ingest_bytes("Acme", "calls.csv", data)  # waits, then does its work
        waited = time.monotonic() - started
        assert holder.wait(timeout=30) == 0
    finally:
        _stop(holder)
    assert waited >= 1.0, f"did not wait for the holder ({waited:.2f} s)"
    assert run.status is RunStatus.COMPLETED, run.reason
    assert services.count_actions("Acme") == 10


@pytest.mark.parametrize("mode", ["read_write", "read_only"])
def test_past_the_lock_timeout_the_error_names_the_holder(
    settings: Settings, make_connection, mode: str
) -> None:
    make_connection("Acme")  # the file exists and is migrated
    impatient = Services(replace(settings, lock_timeout=0.5))
    holder = _hold(settings.database, 5.0, mode)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseBusyError) as caught:
            impatient.connections()
        waited = time.monotonic() - started
        assert holder.poll() is None  # it still holds the file
    finally:
        _stop(holder)
    message = str(caught.value)
    assert f"PID {holder.pid}" in message
    assert str(settings.database) in message
    assert "0.5 s" in message
    assert 0.4 <= waited < 4.0
    # once the holder is gone the same call works
    assert [c.name for c in impatient.connections()] == ["Acme"]


# A CLI ingest, stopped inside its load transaction (its run and file are committed) to be killed.
KILLED_INGEST = r"""
import sys, time
from pathlib import Path
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store import actions

home, path, marker = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
original = actions.create_for_file

def stopped(*args, **kwargs):
    original(*args, **kwargs)
    marker.write_text("loading")  # kill me now
    time.sleep(120)

actions.create_for_file = stopped
Services(Settings(home=home, lock_timeout=10.0)).ingest_file("Acme", path)
"""


def test_a_run_a_killed_cli_ingest_left_becomes_failed_while_serve_runs_on(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = make_connection("Acme")
    other = make_connection("Other")
    monkeypatch.setattr(engine_module, "RECOVER_SECONDS", 1, raising=False)  # a minute in serve
    engine = Engine(services)
    engine.start(servers=False)  # `connectbatch serve` (or the app) running all along
    try:
        ours = services.ingestor.start_run(other, "manual")  # a run of the engine's own process
        path = tmp_path / "calls.csv"
        path.write_bytes(call_csv(20))
        marker = tmp_path / "loading"
        root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_INGEST, str(services.settings.home), str(path), str(marker)],
            env={**os.environ, "PYTHONPATH": python_path},
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert child.poll() is None and time.monotonic() < deadline, (
                    "the ingest did not get to its load"
                )
                time.sleep(0.02)
        finally:
            child.kill()
            child.wait(timeout=30)
        [run] = services.runs("Acme")
        deadline = time.monotonic() + 20
        while services.run(run.id).status is RunStatus.IN_PROGRESS:  # was: until a restart or CLI command
            assert time.monotonic() < deadline, "the killed ingest's run stayed In Progress"
            time.sleep(0.1)
        failed = services.run(run.id)
        assert failed.status is RunStatus.FAILED and "interrupted" in (failed.reason or "")
        assert services.run(ours.id).status is RunStatus.IN_PROGRESS  # a live run is left alone
    finally:
        engine.stop()
    retried = services.retry(run.id)
    assert retried.status is RunStatus.COMPLETED and services.count_actions("Acme") == 20
    assert acme.id == run.connection_id
