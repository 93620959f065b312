"""`connectbatch connection add --reuse-credential ID` (issue 11, credentials reuse): a new
connection uses an existing credential set of the same partner instead of getting one; the
secret is never printed again, `--json` says which set and who shares it, `connection show`
and `credentials list` say it is shared, and a set still in use by another connection cannot
be deleted (the error names them). Refusals name the flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectbatch.cli import main
from connectbatch.services.base import ServiceBase

PUSH = ["--direction", "inbound", "--method", "sftp", "--methodology", "push"]


@pytest.fixture
def home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ServiceBase, "default_partner", None)
    return home


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    result = main(list(argv))
    captured = capsys.readouterr()
    assert result == 0, captured.err
    return captured.out


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    out = cli(capsys, *argv, "--json")
    assert out.count("\n") == 1, "--json prints exactly one line"
    return json.loads(out)


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str, mentions: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and mentions in captured.err, captured.err
    return captured.err


def test_connection_add_reuses_a_credential_of_the_same_partner(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "partner", "add", "Acme", "--type", "brand")
    cli(capsys, "partner", "add", "Other", "--type", "brand")
    first = cli_json(capsys, "connection", "add", "--name", "Calls", *PUSH, "--partner", "Acme",
                     "--pattern", "calls_*.csv")  # fmt: skip
    password = first["provisioned"]["password"]
    [cred] = cli_json(capsys, "credentials", "list", "Calls")

    reused = cli_json(capsys, "connection", "add", "--name", "Daily", *PUSH, "--partner", "Acme",
                      "--pattern", "daily_*.csv", "--reuse-credential", str(cred["id"]))  # fmt: skip
    assert reused["provisioned"] is None
    assert reused["reused_credential"]["id"] == cred["id"]
    assert reused["reused_credential"]["used_by"] == ["Calls", "Daily"]
    assert password not in json.dumps(reused)

    text = cli(capsys, "connection", "show", "Daily")
    assert f"credential {cred['id']} is shared by: Calls, Daily" in text and password not in text
    assert cli_json(capsys, "credentials", "list", "Calls")[0]["used_by"] == ["Calls", "Daily"]

    # Refusals name the flag: another partner's set, an unknown id.
    cli_error(capsys, "connection", "add", "--name", "Theirs", *PUSH, "--partner", "Other",
              "--reuse-credential", str(cred["id"]), mentions="--reuse-credential: ")  # fmt: skip
    cli_error(capsys, "connection", "add", "--name", "Ghost", *PUSH, "--partner", "Acme",
              "--reuse-credential", "999", mentions="there is no credential 999")  # fmt: skip
    assert "Theirs" not in cli(capsys, "connection", "list")  # nothing half-created

    # Still used by two: delete is refused, naming both; after one goes, it is allowed.
    err = cli_error(capsys, "credentials", "delete", str(cred["id"]), mentions="'Calls'")
    assert "'Daily'" in err
    cli(capsys, "connection", "delete", "Calls", "--yes")
    assert cli_json(capsys, "credentials", "list", "Daily")[0]["used_by"] == ["Daily"]
    assert "deleted" in cli(capsys, "credentials", "delete", str(cred["id"]))


def test_text_output_of_a_reuse_shows_no_secret(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "partner", "add", "Acme", "--type", "brand")
    first = cli_json(capsys, "connection", "add", "--name", "Calls", *PUSH, "--partner", "Acme")
    [cred] = cli_json(capsys, "credentials", "list", "Calls")
    out = cli(capsys, "connection", "add", "--name", "Daily", *PUSH, "--partner", "Acme",
              "--pattern", "daily_*.csv", "--reuse-credential", str(cred["id"]))  # fmt: skip
    assert "shared by: Calls, Daily" in out
    assert first["provisioned"]["password"] not in out and "password" not in out.lower()


def test_detach_lets_one_connection_stop_using_a_shared_set(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "partner", "add", "Acme", "--type", "brand")
    cli(capsys, "partner", "add", "Other", "--type", "brand")
    cli(capsys, "connection", "add", "--name", "Calls", *PUSH, "--partner", "Acme")
    [cred] = cli_json(capsys, "credentials", "list", "Calls")
    cli(capsys, "connection", "add", "--name", "Daily", *PUSH, "--partner", "Acme",
        "--pattern", "daily_*.csv", "--reuse-credential", str(cred["id"]))  # fmt: skip
    # A connection sharing a set cannot move to another partner (the set is Acme's)...
    cli_error(capsys, "connection", "edit", "Daily", "--partner", "Other", mentions="shares credential")
    # ...until it stops using it; the other connection keeps it, as its owner.
    assert cli_json(capsys, "credentials", "detach", str(cred["id"]), "--connection", "Calls") == {
        "credential_id": cred["id"], "detached": "Calls",
    }  # fmt: skip
    assert cli_json(capsys, "credentials", "list", "Calls") == []
    assert cli_json(capsys, "credentials", "list", "Daily")[0]["used_by"] == ["Daily"]
    cli_error(
        capsys,
        "credentials",
        "detach",
        str(cred["id"]),
        "--connection",
        "Daily",
        mentions="delete it instead",
    )
    cli(capsys, "connection", "edit", "Daily", "--partner", "Other")  # its own now: it moves along
    cli(capsys, "connection", "add", "--name", "Other daily", *PUSH, "--partner", "Other",
        "--pattern", "other_*.csv", "--reuse-credential", str(cred["id"]))  # fmt: skip


def test_a_reused_push_login_needs_a_pattern_of_its_own(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Uploads with a shared login go to the one connection whose folder and pattern match:
    a second connection with the same pattern would leave every upload unrouted."""
    cli(capsys, "partner", "add", "Acme", "--type", "brand")
    cli(capsys, "connection", "add", "--name", "Calls", *PUSH, "--partner", "Acme", "--pattern", "*.csv")
    [cred] = cli_json(capsys, "credentials", "list", "Calls")
    err = cli_error(capsys, "connection", "add", "--name", "Daily", *PUSH, "--partner", "Acme",
                    "--pattern", "*.csv", "--reuse-credential", str(cred["id"]),
                    mentions="--reuse-credential: 'Calls' uses the same push login")  # fmt: skip
    assert "same file pattern '*.csv'" in err and "distinct pattern or folder" in err
    assert [c["name"] for c in cli_json(capsys, "connection", "list")] == ["Calls"]  # nothing half-made

    cli(capsys, "connection", "add", "--name", "Daily", *PUSH, "--partner", "Acme",
        "--pattern", "daily_*.csv", "--reuse-credential", str(cred["id"]))  # fmt: skip
    cli_error(capsys, "connection", "edit", "Daily", "--pattern", "*.csv",
              mentions="--pattern: 'Calls' uses the same push login")  # fmt: skip
    assert cli_json(capsys, "connection", "show", "Daily")["connection"]["pattern"] == "daily_*.csv"
