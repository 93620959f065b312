"""Issue 11 on the command line: `--late-events` on connection add/edit (defect 5), and a
held batch that reads "Needs review" in `runs` and `connection list` (defect 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_cli_pipeline import PUSH, cli, cli_error, cli_json, write_calls


def test_late_events_policy_on_add_edit_and_show(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    added = cli_json(capsys, "connection", "add", "--name", "Acme", *PUSH, "--late-events", "refuse")
    assert added["connection"]["late_events"] == "refuse"
    assert "refuse (an event past the lock period is rejected)" in cli(capsys, "connection", "show", "Acme")
    edited = cli_json(capsys, "connection", "edit", "Acme", "--late-events", "lock")
    assert edited["connection"]["late_events"] == "lock"
    cli_error(capsys, "connection", "edit", "Acme", "--late-events", "ignore", mentions="invalid choice")
    default = cli_json(capsys, "connection", "add", "--name", "Other", *PUSH)
    assert default["connection"]["late_events"] == "lock"


def test_a_held_batch_reads_needs_review(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    repeats = write_calls(tmp_path / "repeats.csv", ["r1", "r1"])
    cli(capsys, "ingest", str(repeats), "--connection", "Acme", code=1)  # nothing loaded: exit 1

    runs = cli(capsys, "runs")
    assert "Needs review (quarantined)" in runs and "Failed" not in runs
    listed = cli(capsys, "connection", "list")
    # the status is one of the seed's four; the held batch is said apart
    assert "Completed, needs review" in listed and "Failed" not in listed
    assert "quarantine list" in listed
    [shown] = cli_json(capsys, "connection", "list")
    assert (shown["status"], shown["needs_review"]) == ("Completed", True)
    assert "Completed, needs review" in cli(capsys, "connection", "show", "Acme")
