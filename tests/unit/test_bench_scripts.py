"""Every benchmark script starts outside pytest: `make bench` runs them as plain scripts, and
some reuse the integration tests' server modules (sshd.py, redisd.py) as libraries. When those
modules began to import `tests/helpers`, `make bench` stopped at bench_sftp.py with
"No module named 'helpers'", which no test saw, since pytest puts tests/ on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("bench_*.py") if "argparse" in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_benchmark_script_imports_what_it_needs_when_run_alone(script: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=BENCH.parent, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
