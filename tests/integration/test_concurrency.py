"""Another process holding the DuckDB file: a Services call waits for it, or, past the lock
timeout, fails with DatabaseBusyError naming the process that holds the file."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import call_csv

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
