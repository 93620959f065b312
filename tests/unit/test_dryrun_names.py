"""Partner dry runs (issue 12, part 3): which uploads are dry runs, and the name of the
results file written beside one (a partner's file name is hostile text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectbatch.pipeline import dryrun
from connectbatch.transfer.push.gateway import Account
from connectbatch.transfer.push.routing import is_dry_run


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("calls.csv", "calls.csv.results.csv"),
        ("../../etc/passwd", "passwd.results.csv"),
        ("..\\..\\boot.ini", "boot.ini.results.csv"),
        (".hidden.csv", "hidden.csv.results.csv"),
        ("..", "file.results.csv"),
        ("=cmd|' calc'!A0.csv", "_cmd___calc__A0.csv.results.csv"),
        ("a\nb\x1b[31m.csv", "a_b__31m.csv.results.csv"),
        ("calls.csv.part", "calls.csv.part.results.csv"),
        ("é" * 300, "_" * 120 + ".results.csv"),
    ],
)
def test_results_names_are_harmless(name: str, expected: str) -> None:
    assert dryrun.results_name(name) == expected


def test_uploads_in_a_dry_run_folder_are_dry_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    account = Account("u", 1, "Acme", home.resolve(), True, 1024)
    assert is_dry_run(account, home / "dry-run" / "calls.csv")
    assert is_dry_run(account, home / "eu" / "dry-run" / "calls.csv")  # a shared login's folder
    assert is_dry_run(account, home / "dry-run" / "deeper" / "calls.csv")  # never loaded
    assert not is_dry_run(account, home / "calls.csv")
    assert not is_dry_run(account, home / "dry-run")  # the folder itself is no file
    assert not is_dry_run(account, home / "dry-run-not" / "calls.csv")
    assert not is_dry_run(account, tmp_path / "dry-run" / "calls.csv")  # outside the home
