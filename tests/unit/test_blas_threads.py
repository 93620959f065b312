"""numpy's OpenBLAS pool is one thread in our processes (settings.quiet_blas): its threads
spun ~0.1 s of CPU at every start for BLAS work nothing of ours does."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import connectbatch, os; print(os.environ.get('OPENBLAS_NUM_THREADS'))"


def _probe(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_connectbatch_asks_for_one_blas_thread() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert _probe(env) == "1"


def test_an_operators_setting_is_kept() -> None:
    assert _probe({**os.environ, "OPENBLAS_NUM_THREADS": "4"}) == "4"
