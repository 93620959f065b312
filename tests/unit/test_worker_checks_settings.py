"""`connectbatch worker` checks its settings at start as every other command does
(`Settings.check_usable`): a data directory that is a file is named, in one line, before any
Celery worker starts (found by the CLI audit: the worker skipped the check)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_worker_with_a_home_that_is_a_file_stops_naming_the_variable(tmp_path: Path) -> None:
    home = tmp_path / "not-a-folder"
    home.write_text("a file")
    env = {**os.environ, "CONNECTBATCH_HOME": str(home), "CONNECTBATCH_MODE": "distributed"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")])
    )
    done = subprocess.run(
        [sys.executable, "-m", "connectbatch", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "CONNECTBATCH_HOME" in done.stderr and "Traceback" not in done.stderr, done.stderr
