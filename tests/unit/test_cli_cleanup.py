"""`connectbatch cleanup`: what it says it did matches CONNECTBATCH_STAGING_RETENTION_DAYS."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import cli, cli_json


def test_cleanup_with_retention_0_says_it_keeps_everything(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "removed 0 staged files unused for more than 0 days", as if every file older
    than now were due; 0 keeps them all (README, CONNECTBATCH_STAGING_RETENTION_DAYS)."""
    monkeypatch.setenv("CONNECTBATCH_STAGING_RETENTION_DAYS", "0")

    out = cli(capsys, "cleanup")

    assert "0 days" not in out
    assert "CONNECTBATCH_STAGING_RETENTION_DAYS is 0" in out and "kept" in out
    assert cli_json(capsys, "cleanup") == []


def test_cleanup_names_the_retention_it_applied(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "cleanup").startswith("removed 0 staged files unused for more than 30 days")
