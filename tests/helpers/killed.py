"""Ingests in child processes that stop (for a SIGKILL, or until told to go on) at a point a
wrapper marks: the ledger audits' crash and race tests (tests/integration/test_audit_ledger_*)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def child_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's home for the children (and for the test's own Services), importing this tree."""
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONNECTBATCH_MAX_AGE_DAYS", "100000")  # the generator's dates are fixed
    monkeypatch.delenv("CONNECTBATCH_DB", raising=False)
    monkeypatch.delenv("CONNECTBATCH_STAGING_RETENTION_DAYS", raising=False)  # the default, 30
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), out.get("PYTHONPATH")]))
    return out


def generated(path: Path, rows: int) -> Path:
    """The benchmark generator's call-conversion file of `rows` rows."""
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "generate.py"), str(path), "--rows", str(rows)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def acme(services: Services | None = None) -> Services:
    """The push connection "Acme" (lock period ten years: nothing locks in a test)."""
    services = services or Services(Settings.from_env())
    services.create_connection(
        Connection(
            name="Acme", data_type="call_conversions", direction=Direction.INBOUND,
            method=Method.SFTP, methodology=Methodology.PUSH, lock_days=3650,
        )
    )  # fmt: skip
    return services


def started(
    code: str, args: list[str], env: dict[str, str], cwd: Path, marker: Path
) -> subprocess.Popen[bytes]:
    """`python -c code args...`, once it wrote `marker` (its wrapper's point)."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, f"the child never reached {marker.name}"
        time.sleep(0.02)
    return child
