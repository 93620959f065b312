"""`python -m connectbatch` runs the command line, as `connectbatch` does.

A partner engineer or operator with only the interpreter at hand (`.venv/bin/python`, no
activated environment) tries `python -m connectbatch --help` first; it answered "No module
named connectbatch.__main__".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from connectbatch import __version__

REPO = Path(__file__).resolve().parents[2]


def test_python_dash_m_connectbatch_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "connectbatch", "--version"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert __version__ in done.stdout
    assert done.stdout.startswith("connectbatch ")
