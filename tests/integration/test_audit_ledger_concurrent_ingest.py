"""Audit (ledger, "nothing doubled"): the same records ingested by two processes at once for
one connection are loaded once.

Expected behaviour: a connection's records are loaded once, whatever the order in which two
deliveries of them meet. A push run may overlap another run of its connection (README: "push:
may overlap"), e.g. `connectbatch ingest` of a file (or an app upload) while `serve` takes the
partner's push of the same file. The second delivery must end as a duplicate (identical
bytes) or held for review ("already loaded", other bytes such as CRLF line endings), never as
a second load of the same CallSessionId/VendorEventId with a second set of PENDING actions.

How it breaks now: process A (CLI) stages, records and computes its file, then its load
transaction comes a moment later (here: held at the start of `Ingestor.commit`, as a slow
disk, a busy database or a descheduled process would hold it). Meanwhile process B (push)
records, computes and loads the same records. A then commits its load without checking
again, and every action exists twice.

Real processes: both ingests run in child processes on one DuckDB file; A is paused by a
wrapper around `staging.settle` (called at the start of the commit half) until B finished.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.killed import acme, child_env, generated, started
from helpers.store import count

from connectbatch.models import RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ROWS = 2_000

SLOW_COMMIT = r"""
import functools, sys, time
from pathlib import Path
from connectbatch.pipeline import staging

path, trigger, marker, go = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
original = staging.settle

@functools.wraps(original)
def held_back(*args, **kwargs):
    marker.write_text("computed")  # validated, "already loaded" checked: now the other one goes
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return original(*args, **kwargs)

staging.settle = held_back
from connectbatch.services import Services
run = Services().ingest_file("Acme", path, trigger=trigger)
print(run.id, run.status.value, run.actions_created, flush=True)
"""

PLAIN = r"""
import sys
from connectbatch.services import Services
run = Services().ingest_file("Acme", sys.argv[1], trigger=sys.argv[2])
print(run.id, run.status.value, run.actions_created, flush=True)
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return child_env(tmp_path, monkeypatch)


@pytest.fixture
def calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated(tmp_path_factory.mktemp("calls") / "Acme_calls.csv", ROWS)


def _services() -> Services:
    return Services(Settings.from_env())


@pytest.mark.parametrize("variant", ["same_bytes_other_name", "crlf_line_endings"])
def test_two_processes_loading_the_same_records_load_them_once(
    variant: str, calls: Path, env: dict[str, str], tmp_path: Path
) -> None:
    acme()
    again = tmp_path / "Acme_calls_again.csv"
    data = calls.read_bytes()
    again.write_bytes(data.replace(b"\n", b"\r\n") if variant == "crlf_line_endings" else data)

    marker, go = tmp_path / "computed", tmp_path / "go"
    a = started(SLOW_COMMIT, [str(calls), "cli", str(marker), str(go)], env, tmp_path, marker)
    b = subprocess.run(
        [sys.executable, "-c", PLAIN, str(again), "push"],
        env=env, cwd=tmp_path, capture_output=True, timeout=180,
    )  # fmt: skip
    go.write_text("go")
    _, err_a = a.communicate(timeout=180)
    assert a.returncode == 0, err_a.decode()
    assert b.returncode == 0, b.stderr.decode()

    services = _services()
    runs = services.runs("Acme")
    assert len(runs) == 2
    assert all(r.status is not RunStatus.IN_PROGRESS for r in runs)
    created = sum(r.actions_created for r in runs)
    loaded = [r for r in runs if r.actions_created]
    assert len(loaded) == 1, (
        f"both deliveries loaded: {[(r.id, r.trigger, r.status.value, r.actions_created) for r in runs]}"
    )
    assert services.count_actions() == created == loaded[0].actions_created
    assert count(services, "call_conversions") == loaded[0].rows_accepted


SLOW_RETRY = r"""
import functools, sys, time
from pathlib import Path
from connectbatch.pipeline import staging

run_id, marker, go = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
original = staging.settle

@functools.wraps(original)
def held_back(*args, **kwargs):
    marker.write_text("computed")
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return original(*args, **kwargs)

staging.settle = held_back
from connectbatch.services import Services
run = Services().retry(run_id)
print(run.id, run.status.value, run.actions_created, flush=True)
"""

KILLED_AT_COMMIT = r"""
import sys, time, os
from pathlib import Path
from connectbatch.pipeline import staging

marker = Path(sys.argv[3])

def stop_here(*args, **kwargs):
    marker.write_text(str(os.getpid()))  # computed, about to load: kill me
    time.sleep(120)

staging.settle = stop_here
from connectbatch.services import Services
Services().ingest_file("Acme", sys.argv[1], trigger=sys.argv[2])
"""


def test_retry_of_a_killed_push_beside_the_upload_taken_in_again_loads_once(
    calls: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """A push ingest killed -9 before its load leaves a Failed ("interrupted") run, and the
    upload is taken in again (README: "an upload whose run was already recorded when the
    process died is taken in as that run's retry ... so one upload is one open outcome").
    If an operator retries the Failed run while that re-ingest is under way, only one of the
    two may load the file: the other is a duplicate (or refused as a second retry). Now both
    load it and every action is doubled."""
    acme()
    marker = tmp_path / "killpoint"
    child = started(KILLED_AT_COMMIT, [str(calls), "push", str(marker)], env, tmp_path, marker)
    child.kill()
    child.wait(timeout=30)
    services = _services()
    [failed] = services.startup()
    services.db.release()
    del services

    computed, go = tmp_path / "computed", tmp_path / "go"
    retry = started(SLOW_RETRY, [str(failed), str(computed), str(go)], env, tmp_path, computed)
    upload = tmp_path / "upload" / calls.name  # the same upload, taken in again
    upload.parent.mkdir()
    upload.write_bytes(calls.read_bytes())
    push = subprocess.run(
        [sys.executable, "-c", PLAIN, str(upload), "push"],
        env=env, cwd=tmp_path, capture_output=True, timeout=180,
    )  # fmt: skip
    go.write_text("go")
    _, retry_err = retry.communicate(timeout=180)
    assert retry.returncode == 0, retry_err.decode()
    assert push.returncode == 0, push.stderr.decode()

    services = _services()
    runs = services.runs("Acme")
    assert all(r.status is not RunStatus.IN_PROGRESS for r in runs)
    loaded = [r for r in runs if r.actions_created]
    assert len(loaded) == 1, (
        f"loaded twice: {[(r.id, r.trigger, r.status.value, r.retry_of, r.actions_created) for r in runs]}"
    )
    assert services.count_actions() == loaded[0].actions_created
