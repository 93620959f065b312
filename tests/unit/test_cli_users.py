"""`connectbatch user add | list | disable` against a real data directory under tmp_path,
`main()` in-process. The CLI is the local operator: it needs no login."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from connectbatch.cli import main
from connectbatch.services import AuthenticationError, Services
from connectbatch.settings import Settings


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    result = main(list(argv))
    captured = capsys.readouterr()
    assert result == code, captured.err
    assert "Traceback" not in captured.err
    return captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    out, _ = run(capsys, *argv, "--json")
    assert out.count("\n") == 1, "--json prints exactly one line"
    return json.loads(out)


def test_add_with_password_stdin_then_the_user_can_log_in(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    added = run_json(capsys, "user", "add", "ada", "--role", "reviewer", "--password-stdin")

    assert (added["name"], added["role"], added["disabled"]) == ("ada", "reviewer", False)
    assert "password" not in added  # given on stdin: never echoed
    assert Services(Settings.from_env()).authenticate("ada", "a long enough password").name == "ada"


def test_add_without_a_password_generates_one_and_prints_it_once(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(capsys, "user", "add", "bob", "--role", "partner_manager")

    assert "added user bob (Partner manager)" in out
    password = out.split("password ", 1)[1].split()[0]
    assert Services(Settings.from_env()).authenticate("bob", password).name == "bob"
    listed, _ = run(capsys, "user", "list")
    assert password not in listed


def test_list_and_disable(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "user", "add", "ada", "--role", "admin")
    run(capsys, "user", "add", "bob", "--role", "analyst")

    assert [(u["name"], u["role"]) for u in run_json(capsys, "user", "list")] == [
        ("ada", "admin"),
        ("bob", "analyst"),
    ]
    out, _ = run(capsys, "user", "list")
    assert "bob" in out and "analyst" in out and "active" in out

    disabled = run_json(capsys, "user", "disable", "bob")
    assert disabled["disabled"] is True
    assert [u["disabled"] for u in run_json(capsys, "user", "list")] == [False, True]


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["user", "add", "eve", "--role", "root"], "invalid choice: 'root'"),
        (["user", "add", "eve"], "--role"),
        (["user", "add", "bad name!", "--role", "admin"], "name:"),
        (["user", "disable", "nobody"], "there is no user named 'nobody'"),
    ],
)
def test_unusable_input_is_one_error_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], mentions: str
) -> None:
    _, err = run(capsys, *argv, code=2)

    assert mentions in err and err.count("\n") == 1


def test_a_short_password_or_a_taken_name_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    _, err = run(capsys, "user", "add", "ada", "--role", "admin", "--password-stdin", code=2)
    assert "password: must have at least" in err
    run(capsys, "user", "add", "ada", "--role", "admin")
    _, err = run(capsys, "user", "add", "ada", "--role", "reviewer", code=2)
    assert "already exists" in err


def test_demo_creates_one_login_per_role_once(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    out, _ = run(capsys, "demo")

    services = Services(Settings.from_env())
    roles = {u.name: str(u.role) for u in services.users()}
    assert roles == {
        "admin": "admin", "analyst": "analyst", "reviewer": "reviewer", "partner": "partner_manager"
    }  # fmt: skip
    line = next(line for line in out.splitlines() if line.strip().startswith("reviewer "))
    assert services.authenticate("reviewer", line.split("password ", 1)[1].strip()).name == "reviewer"
    with pytest.raises(AuthenticationError):
        services.authenticate("reviewer", "not the password")

    again, _ = run(capsys, "demo")
    assert "the demo app logins exist already" in again
    assert "password" not in again.split("the demo connections")[0]


def test_a_lost_password_is_reset_and_the_login_works_again(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from connectbatch.services import Services
    from connectbatch.settings import Settings

    assert main(["user", "add", "ada", "--role", "reviewer"]) == 0
    assert main(["user", "disable", "ada"]) == 0
    capsys.readouterr()
    assert main(["user", "password", "ada", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["disabled"] is False and len(shown["password"]) >= 16
    user = Services(Settings.from_env()).authenticate("ada", shown["password"])
    assert user.name == "ada"
    assert main(["user", "password", "nobody"]) == 2
