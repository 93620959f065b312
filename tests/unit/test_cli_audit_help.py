"""CLI audit, 2026-12-07: what --help and the README's command list say matches what the
commands do."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import cli

from connectbatch.cli.common import EXIT_BUSY, EXIT_INTERNAL, EXIT_RUN_FAILED, EXIT_UNUSABLE

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_top_level_help_states_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """A script needs them; only the module's docstring had them."""
    out = " ".join(cli(capsys, "--help").split())
    for code in (0, EXIT_RUN_FAILED, EXIT_UNUSABLE, EXIT_BUSY, EXIT_INTERNAL):
        assert f" {code} " in out
    assert "exit codes: 0 done" in out and "75 busy" in out


def test_partner_delete_yes_does_not_promise_a_question(capsys: pytest.CaptureFixture[str]) -> None:
    """It said "do not ask for confirmation", but without --yes nothing is asked: it refuses."""
    out = " ".join(cli(capsys, "partner", "delete", "--help").split())
    assert "do not ask" not in out and "--yes confirm the deletion (required" in out


def test_triage_help_gives_the_range_of_days(capsys: pytest.CaptureFixture[str]) -> None:
    assert "1 to 366" in " ".join(cli(capsys, "triage", "--help").split())


def test_the_readme_lists_each_credentials_subcommand_once() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index("connectbatch credentials list N") :].split("connectbatch cleanup", 1)[0]
    assert block.count("add-key ID --public-key-file PATH") == 1
