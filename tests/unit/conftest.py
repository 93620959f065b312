"""Fixtures the unit tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data directory for one test, where the commands and Services look
    (CONNECTBATCH_HOME; no CONNECTBATCH_DB from the environment)."""
    path = tmp_path / "home"
    monkeypatch.setenv("CONNECTBATCH_HOME", str(path))
    monkeypatch.delenv("CONNECTBATCH_DB", raising=False)
    return path
