"""CLI audit, 2026-12-07: `make run`'s demo on a data directory that is not fresh. It stopped
with exit 2 ("a connection named ... already exists"), so the app never started, whenever a
demo connection had been deleted or renamed or a first run was cut short; and a second run
showed no way to log in (the passwords are shown once)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import cli, cli_error, cli_json


def test_demo_puts_back_a_deleted_demo_connection_and_leaves_the_others(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "demo")
    before = {c["name"]: c["id"] for c in cli_json(capsys, "connection", "list")}
    runs_before = len(cli_json(capsys, "runs", "--limit", "1000"))
    cli(capsys, "connection", "delete", "Acme Call Tracking", "--yes")

    out = cli(capsys, "demo")

    assert "created 1 demo connections" in out
    after = {c["name"]: c["id"] for c in cli_json(capsys, "connection", "list")}
    assert set(after) == set(before)
    assert after["Acme Call Tracking"] != before["Acme Call Tracking"]
    assert {n: i for n, i in after.items() if n != "Acme Call Tracking"} == {
        n: i for n, i in before.items() if n != "Acme Call Tracking"
    }
    new_runs = cli_json(capsys, "runs", "--connection", "Acme Call Tracking")
    assert len(new_runs) == 5  # its own five files, nothing into the connections already there
    assert len(cli_json(capsys, "runs", "--limit", "1000")) == runs_before + 5
    assert "already in" in cli(capsys, "demo")  # and a third run changes nothing


def test_a_second_demo_says_how_to_get_a_login(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "demo")
    again = cli(capsys, "demo")
    assert "connectbatch user password admin" in again


def test_the_demo_mailbox_shows_its_address_not_a_login(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """E-mail push uses no login of ours (the app and `connection add` show only the address);
    the demo printed a user and a password for it, which nothing can use."""
    out = cli(capsys, "demo")
    line = next(line for line in out.splitlines() if line.strip().startswith("CallRail mailbox:"))
    assert re.fullmatch(
        r"CallRail mailbox: the partner mails its files to "
        r"inbox\+callrail-mailbox-[a-z0-9]{8}@connectbatch\.local",
        line.strip(),
    ), line


def test_a_demo_folder_that_is_a_file_is_one_error_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was "[Errno 17] File exists: ..." (a bare errno, no option named)."""
    target = tmp_path / "not-a-folder"
    target.write_text("")
    cli_error(capsys, "demo", "--dir", str(target), mentions=f"into {target}: it is a file, not a folder")


def test_the_demo_says_where_the_command_is_when_the_shell_cannot_find_it(tmp_path: Path) -> None:
    """`make run` calls .venv/bin/connectbatch; every hint it printed said `connectbatch ...`,
    which a new user's shell (no venv activated) answered with "command not found"."""
    script = Path(sys.executable).parent / "connectbatch"
    env = {**os.environ, "CONNECTBATCH_HOME": str(tmp_path / "home"), "CONNECTBATCH_SFTP_PORT": "0"}
    for path, told in (("/usr/bin:/bin", True), (f"{script.parent}:/usr/bin:/bin", False)):
        done = subprocess.run(
            [str(script), "demo"], capture_output=True, text=True, timeout=300, env={**env, "PATH": path}
        )
        assert done.returncode == 0, done.stderr
        # the script's own path, or the one its shebang names (a .venv that is a link elsewhere)
        lines = {f"(`connectbatch` is {s}: `source {s.parent / 'activate'}` puts it on PATH)"
                 for s in (script, script.resolve())}  # fmt: skip
        assert bool(lines & set(done.stdout.splitlines())) is told, done.stdout
