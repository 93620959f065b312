"""Audit (ledger, "a crash leaves a Failed run that can be retried"): staging retention
deletes the only copy of a file whose run a crash left Failed, so it can never be retried.

Expected behaviour: retention removes staged copies "past their retention (never those still
needed)" (`Ingestor.cleanup_staging`). The staged bytes of a file whose run Failed and was
never retried are still needed: for an app upload (`ingest_bytes`) or a CLI ingest they are
the only copy we have, and `retry` reads nothing else. They must survive retention until the
run was retried (or a person gave it up), or the file is lost while the ledger still offers
a retry.

How it breaks now: `store.runs.staged_hashes_in_use` keeps the hashes of runs In Progress,
quarantined batches and files FETCHED/PARSED/VALIDATED/QUARANTINED (`_NEEDED_STATES`), but
not FAILED files, which is what recovery turns an interrupted file into
(`recovery.recover_interrupted`). `connectbatch serve` and the app run the cleanup every
6 hours (`engine/__init__.py`), so a Failed upload left for the retention period (30 days by
default) loses its bytes and `retry` answers "the staged copy ... is gone; send the file again".

Real processes: the upload runs in a child process SIGKILLed before its load; cleanup is the
real `connectbatch cleanup` command, after the staged copy's time is set back past retention
(what 31 days of waiting would do).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.killed import acme, child_env, generated, started

from connectbatch.models import RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import os, sys, time
from pathlib import Path
from connectbatch.pipeline import staging

marker = Path(sys.argv[2])

def stop_here(*args, **kwargs):
    marker.write_text(str(os.getpid()))  # recorded and computed, not loaded: kill me
    time.sleep(120)

staging.settle = stop_here
from connectbatch.services import Services
Services().ingest_bytes("Acme", "upload.csv", Path(sys.argv[1]).read_bytes())
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return child_env(tmp_path, monkeypatch)


def test_retention_keeps_the_bytes_of_a_failed_run_not_yet_retried(
    env: dict[str, str], tmp_path: Path
) -> None:
    calls = generated(tmp_path / "calls.csv", 300)
    acme()
    marker = tmp_path / "computed"
    child = started(CHILD, [str(calls), str(marker)], env, tmp_path, marker)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    services = Services(Settings.from_env())
    [failed] = services.startup()
    assert services.run(failed).status is RunStatus.FAILED
    staged = services.settings.staging / hashlib.sha256(calls.read_bytes()).hexdigest()
    assert staged.exists()
    services.db.release()

    old = time.time() - 31 * 86400  # a month went by without anyone retrying it
    os.utime(staged, (old, old))
    cleanup = subprocess.run(
        [sys.executable, "-m", "connectbatch", "cleanup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cleanup.returncode == 0, cleanup.stderr

    services = Services(Settings.from_env())
    assert staged.exists(), (
        f"retention removed the only copy of run {failed}'s file: {cleanup.stdout.strip()}"
    )
    retried = services.retry(failed)
    assert retried.status is RunStatus.COMPLETED, retried.reason
    assert retried.actions_created > 0
