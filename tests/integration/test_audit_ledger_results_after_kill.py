"""Audit (ledger, "every file is answered"): a process SIGKILLed between a file's load commit
and its results file left that file without any answer for ever.

README "Feedback": `results` answers the sender for every file, whatever its outcome. A single
file's load transaction also closes its run as Completed; the results file was written after
that commit, the e-mail hook after that, and a kill in between left a Completed run with no
results file, no history line and no outbox row. Now the answer is written inside the load's
transaction under a hidden owed name (pipeline/owed.py) and published after the commit; the
next start publishes what a dead process owed for a committed load (and announces its run),
and removes what it wrote for a load that never committed.

Real processes: the ingest runs in a child process, stopped (SIGKILL) where a wrapper writes a
marker and waits: at the publication (after the commit), or right after the owed answer was
written (before the commit).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from helpers.killed import acme, child_env, generated, started
from helpers.store import count

from connectbatch.models import RunStatus
from connectbatch.pipeline import owed
from connectbatch.services import Services
from connectbatch.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import functools, os, sys, time
from pathlib import Path
from connectbatch.pipeline import commit, owed

marker, where = Path(sys.argv[2]), sys.argv[3]
module, name = (owed, "publish") if where == "after-commit" else (commit, "owe_answer")
original = getattr(module, name)

@functools.wraps(original)
def stop_here(*args, **kwargs):
    if where == "before-commit":
        original(*args, **kwargs)  # the answer is written, owed; the load is not committed
    marker.write_text(str(os.getpid()))  # kill me now
    time.sleep(120)
    raise SystemExit("not killed")

setattr(module, name, stop_here)
from connectbatch.services import Services
Services().ingest_file("Acme", sys.argv[1])
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return child_env(tmp_path, monkeypatch)


def _killed(env: dict[str, str], tmp_path: Path, where: str) -> Services:
    """A 500-row file ingested by a child killed at `where`; the services after a restart."""
    calls = generated(tmp_path / "Acme_calls.csv", 500)
    acme()
    marker = tmp_path / "loaded"
    child = started(CHILD, [str(calls), str(marker), where], env, tmp_path, marker)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    services = Services(Settings.from_env())  # the restart
    services.startup()
    return services


def test_a_file_loaded_just_before_a_kill_still_gets_its_results(env: dict[str, str], tmp_path: Path) -> None:
    services = _killed(env, tmp_path, "after-commit")
    [run] = services.runs("Acme")
    assert run.status is RunStatus.COMPLETED and run.actions_created > 0  # it loaded
    answers = [p.name for p in services.results_files("Acme") if p.name.startswith(f"run{run.id}-")]
    said = [e for e in services.connection_events("Acme") if "results file" in str(e)]
    assert any(name.endswith(".results.csv") for name in answers) or said, (
        f"run {run.id} loaded {run.rows_accepted} rows and is Completed, but its sender has no "
        f"results file ({answers}) and nothing records that none was written"
    )
    assert not [p for p in services.settings.outbound.rglob(f"{owed.OWED_PREFIX}*")]
    summary = json.loads(next(services.settings.outbound.rglob(f"run{run.id}-*.summary.json")).read_text())
    assert summary["rows_accepted"] == run.rows_accepted and summary["status"] == "loaded"


def test_the_answer_owed_for_a_load_never_committed_is_removed(env: dict[str, str], tmp_path: Path) -> None:
    services = _killed(env, tmp_path, "before-commit")
    [run] = services.runs("Acme")
    assert run.status is RunStatus.FAILED and run.actions_created == 0  # nothing loaded: retried later
    assert count(services, "actions") == 0
    assert not list(services.settings.outbound.rglob("*.results.csv"))  # no answer of a load undone
    assert not list(services.settings.outbound.rglob(f"{owed.OWED_PREFIX}*"))


def test_an_answer_published_by_another_start_is_not_an_error(tmp_path: Path) -> None:
    """Another process's start may publish an owed answer whose load committed (a pull run's
    file, its run still going) before the process that wrote it does."""
    owed_file = tmp_path / f"{owed.OWED_PREFIX}run1-file1-a.csv.results.csv"
    owed_file.write_text("Line,Status\n")
    owed.publish([owed_file])
    owed.publish([owed_file])  # again: already published, nothing to do
    assert (tmp_path / "run1-file1-a.csv.results.csv").read_text() == "Line,Status\n"
