"""CLI audit, 2026-12-07: text a partner controls (a file's name, its header) and names that
are not UTF-8 reach the terminal as visible escapes, never as escape sequences that drive it
and never as an internal error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import cli, cli_error

from connectbatch import schemas
from connectbatch.cli import main

ESC = "\x1b]0;pwned\x07\x1b[31m"  # sets the window title, then turns the text red


def template_row() -> tuple[str, str]:
    header, row = schemas.get("call_conversions").template_csv().splitlines()[:2]
    return header, row


def test_parse_escapes_a_hostile_file_name_and_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, row = template_row()
    path = tmp_path / f"calls{ESC}.csv"
    path.write_text(f"{header},Evil{ESC}Col\n{row},x\n{row.replace('1234', '12a4', 1)},y\n", encoding="utf-8")

    out = cli(capsys, "parse", str(path))

    assert "\x1b" not in out and "\x07" not in out
    assert "calls\\x1b]0;pwned\\x07\\x1b[31m.csv" in out  # the name, readable
    assert "unknown columns  Evil\\x1b]0;pwned\\x07\\x1b[31mCol" in out


def test_an_unrecognized_argument_is_echoed_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["types", f"x{ESC}"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "unrecognized arguments: x\\x1b]0;pwned" in err


def _not_utf8_name(tmp_path: Path) -> Path:
    header, row = template_row()
    raw = os.fsencode(tmp_path) + b"/lat\xe9in.csv"  # a latin-1 name, as a partner's zip leaves it
    with open(raw, "w", encoding="utf-8") as fh:
        fh.write(f"{header}\n{row}\n")
    return Path(os.fsdecode(raw))


def test_parse_of_a_file_whose_name_is_not_utf8_on_a_strict_utf8_terminal(tmp_path: Path) -> None:
    """A UTF-8 locale's stdout is strict: the name's surrogate was an internal error (exit 3)."""
    path = _not_utf8_name(tmp_path)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "CONNECTBATCH_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "connectbatch", "parse", os.fsencode(path)],  # type: ignore[list-item]
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert b"lat\\udce9in.csv" in done.stdout and b"rows accepted    1" in done.stdout


def test_ingest_of_a_file_whose_name_is_not_utf8_is_one_error_line(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It started a run and ended in "internal error: InvalidInputException" from the store."""
    path = _not_utf8_name(tmp_path)
    push = ["--direction", "inbound", "--method", "sftp", "--methodology", "push"]
    cli(capsys, "connection", "add", "--name", "acme", *push)

    line = cli_error(capsys, "ingest", str(path), "--connection", "acme", mentions="is not UTF-8")

    assert "latéin.csv" in line and "rename the file" in line
    assert "no runs yet" in cli(capsys, "runs")
