"""Running `connectbatch` commands in a test and reading what they print: the output of one
that succeeds, its `--json` document, or the one error line of one that is refused (exit 2,
nothing on stdout, no traceback)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectbatch.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    result = main(list(argv))
    captured = capsys.readouterr()
    assert result == code, captured.err
    assert "Traceback" not in captured.err
    return captured.out


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    out = cli(capsys, *argv, "--json", code=code)
    assert out.count("\n") == 1, "--json prints exactly one line"
    return json.loads(out)


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str, mentions: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("connectbatch: error: ")
    assert mentions in lines[0], lines[0]
    return lines[0]
