"""The app under test works on its own data directory, without hosted servers on fixed ports."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def app_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONNECTBATCH_SFTP_PORT", "0")
    monkeypatch.setenv("CONNECTBATCH_FTP_PORT", "0")
