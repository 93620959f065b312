"""`connectbatch delivery` and the expected-delivery options of `connection edit` (issue 12,
part 5), in-process against a data directory under tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import cli

from connectbatch.cli import main
from connectbatch.services.base import ServiceBase

PUSH = ["--direction", "inbound", "--method", "sftp", "--methodology", "push"]


@pytest.fixture
def home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ServiceBase, "default_partner", None)
    return home


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    out = cli(capsys, *argv, "--json")
    assert out.count("\n") == 1, "--json prints exactly one line"
    return json.loads(out)


def test_connection_edit_sets_the_expectation_and_delivery_shows_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "partner", "add", "Acme", "--type", "vendor", "--email", "feeds@acme.example")
    cli(capsys, "connection", "add", "--name", "Acme calls", *PUSH, "--partner", "Acme")

    edited = cli_json(
        capsys, "connection", "edit", "Acme calls", "--expect", "Weekdays by 09:00", "--grace", "2h",
        "--volume-tolerance", "30",
    )  # fmt: skip
    assert edited["connection"]["expect"] == "weekdays by 09:00"
    assert edited["connection"]["expect_grace_minutes"] == 120
    assert edited["connection"]["volume_tolerance"] == 30

    [status] = cli_json(capsys, "delivery", "--connection", "Acme calls", "--check")["connections"]
    assert status["expect"] == "weekdays by 09:00" and status["grace_minutes"] == 120
    assert status["owner"] == "feeds@acme.example"  # no owner_email: the partner's address
    assert status["suggestion"] is None and status["open_alerts"] == []

    text = cli(capsys, "delivery")
    assert "weekdays by 09:00, grace 120 min (UTC)" in text and "±30 %" in text
    shown = cli(capsys, "connection", "show", "Acme calls")
    assert "weekdays by 09:00, grace 120 min; rows within ±30 %" in shown

    cli(capsys, "connection", "edit", "Acme calls", "--expect", "", "--volume-tolerance", "",
        "--owner-email", "me@ours.example")  # fmt: skip
    [cleared] = cli_json(capsys, "delivery")["connections"]
    assert cleared["expect"] is None and cleared["volume_tolerance"] is None
    assert cleared["owner"] == "me@ours.example"


def test_bad_expectations_are_refused_with_the_reason(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "partner", "add", "Acme", "--type", "vendor")
    cli(capsys, "connection", "add", "--name", "Acme calls", *PUSH, "--partner", "Acme")

    assert main(["connection", "edit", "Acme calls", "--expect", "hourly"]) == 2
    assert "is not a cadence such as 'daily by 06:00'" in capsys.readouterr().err
    assert main(["connection", "edit", "Acme calls", "--grace", "soon"]) == 2
    assert "not a duration such as 90m, 2h or 1d" in capsys.readouterr().err


def test_a_pull_and_an_outbound_connection_run_hourly_unless_told_otherwise(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A connection made without --schedule never ran by itself: an export never exported."""
    cli(capsys, "partner", "add", "Acme", "--type", "vendor")
    pull = [
        "--direction",
        "inbound",
        "--method",
        "sftp",
        "--methodology",
        "pull",
        "--host",
        "h",
        "--folder",
        "/x",
    ]
    outbound = ["--direction", "outbound", "--method", "sftp", "--methodology", "pull_from_us"]
    made = cli_json(capsys, "connection", "add", "--name", "Pull", *pull, "--partner", "Acme")
    assert made["connection"]["schedule"] == "0 * * * *"
    made = cli_json(capsys, "connection", "add", "--name", "Out", *outbound, "--partner", "Acme")
    assert made["connection"]["schedule"] == "0 * * * *"
    made = cli_json(
        capsys, "connection", "add", "--name", "Manual", *pull, "--partner", "Acme", "--schedule", ""
    )
    assert made["connection"]["schedule"] is None
    made = cli_json(capsys, "connection", "add", "--name", "Push", *PUSH, "--partner", "Acme")
    assert made["connection"]["schedule"] is None


def test_an_e_mail_push_connection_hands_out_its_address_and_no_login(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed audit: a username and password were shown for e-mail push, which no server of
    ours takes: a partner told to use them had nothing to use them on."""
    cli(capsys, "partner", "add", "Acme", "--type", "vendor")
    email = ["--direction", "inbound", "--method", "email", "--methodology", "push", "--pattern", "*.csv"]
    shown = cli(capsys, "connection", "add", "--name", "Acme mail", *email, "--partner", "Acme")
    assert "inbox+" in shown and "e-mail address" in shown
    assert "password" not in shown.lower() and "Login for the partner" not in shown
