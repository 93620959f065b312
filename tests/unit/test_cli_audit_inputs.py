"""CLI audit, 2026-12-07: option values and files a person may get wrong are refused with one
line naming what to fix (exit 2), never an internal error (exit 3), and nothing is saved from
a document that does not say what it seems to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import cli, cli_error

from connectbatch.cli import main

PUSH = ["--direction", "inbound", "--method", "sftp", "--methodology", "push"]
PULL = ["--direction", "inbound", "--method", "sftp", "--methodology", "pull", "--host", "h.example",
        "--folder", "/out", "--username", "u", "--password", "p"]  # fmt: skip


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str, mentions: str) -> None:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err
    assert mentions in err, err


def test_mapping_set_from_a_file_that_is_not_utf8(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "connection", "add", "--name", "acme", *PUSH)
    doc = tmp_path / "mapping.json"
    doc.write_bytes(b'\xff\xfe{"Campaign": "CampaignId"}')  # UTF-16 from a Windows editor
    cli_error(capsys, "connection", "mapping", "set", "acme", "--from-json", str(doc), mentions="not UTF-8")


def test_mapping_set_refuses_a_mapping_that_is_not_an_object(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """{"mapping": null} was saved as version 1: a header named "mapping", ignored."""
    cli(capsys, "connection", "add", "--name", "acme", *PUSH)
    doc = tmp_path / "mapping.json"
    doc.write_text('{"mapping": null, "constants": {"CampaignId": "1234"}}')
    cli_error(capsys, "connection", "mapping", "set", "acme", "--from-json", str(doc),
              mentions='"mapping" must be an object')  # fmt: skip
    assert "no field mapping saved" in cli(capsys, "connection", "mapping", "show", "acme")


@pytest.mark.parametrize("rows", ["0", "-5"])
def test_mapping_suggest_needs_at_least_one_row(capsys: pytest.CaptureFixture[str], rows: str) -> None:
    usage_error(capsys, "connection", "mapping", "suggest", "acme", "f.csv", "--rows", rows,
                mentions="argument --rows: must be at least 1")  # fmt: skip


def test_a_minimum_age_past_the_stores_range_names_the_option(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """99999999999999 seconds was an internal error quoting DuckDB's INT32 conversion and SQL."""
    too_old = ["--min-age-seconds", "99999999999999"]
    message = "argument --min-age-seconds: must be a whole number from 0 to 2,147,483,647"
    usage_error(capsys, "connection", "add", "--name", "far", *PULL, *too_old, mentions=message)


def test_worker_log_level_and_workers_timeout_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    """`worker --loglevel BOGUS` was "internal error: BadParameter"; `workers --timeout nan`
    a ValueError, `inf` an OverflowError."""
    usage_error(capsys, "worker", "--loglevel", "BOGUS", mentions="argument --loglevel: invalid choice")
    for value in ("nan", "inf", "-1", "0"):
        usage_error(
            capsys, "workers", "--timeout", value, mentions="argument --timeout: must be from 0.1 to 600"
        )


def test_triage_days_past_its_range_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    """It said "days: must be ..." after opening the database; the help gave no range."""
    usage_error(
        capsys, "triage", "--days", "1000", mentions="argument --days: must be a whole number from 1 to 366"
    )


def test_end_of_input_at_the_delete_question_deletes_nothing(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-D at "Delete connection ...? [y/N]" was "internal error: EOFError" (exit 3)."""
    cli(capsys, "connection", "add", "--name", "acme", *PUSH)

    def end_of_input(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", end_of_input)

    assert "not deleted" in cli(capsys, "connection", "delete", "acme")
    assert "acme" in cli(capsys, "connection", "list")


def test_mapping_suggest_of_a_file_with_a_huge_header_field_is_one_error_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A header field over 128 KB (a binary file) was "internal error: Error: field larger
    than field limit"."""
    cli(capsys, "connection", "add", "--name", "acme", *PUSH)
    sample = tmp_path / "export.csv"
    sample.write_text('"' + "x" * 200_000 + '",b\n1,2\n')
    cli_error(
        capsys, "connection", "mapping", "suggest", "acme", str(sample), mentions="cannot be read as CSV"
    )


def test_mapping_suggest_reads_only_the_start_of_a_big_plain_file(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole file was read into memory for a 50-row sample: a partner's 2 GB export took
    2 GB (and `/dev/zero` all there was, until the kernel killed the command)."""
    from connectbatch.services import Services

    cli(capsys, "connection", "add", "--name", "acme", *PUSH)
    big = tmp_path / "export.csv"
    big.write_text("CampaignId,Caller\n" + "1234,+15550001\n" * 800_000)  # ~12 MB
    given: list[int] = []
    suggest = Services.suggest_mapping

    def measured(self: Services, name_or_id: str | int, data: bytes, rows: int = 50) -> object:
        given.append(len(data))
        return suggest(self, name_or_id, data, rows=rows)

    monkeypatch.setattr(Services, "suggest_mapping", measured)
    assert "nothing saved" in cli(capsys, "connection", "mapping", "suggest", "acme", str(big))
    assert given and given[0] <= 4 * 1024 * 1024 < big.stat().st_size


def test_parse_of_a_pipe_says_to_save_it_first(tmp_path: Path) -> None:
    """`parse <(zcat x.gz)` said only "File or stream is not seekable."; a named pipe nothing
    writes to hung the command. In a subprocess, so a hang fails the test instead of the run."""
    pipe = tmp_path / "calls.csv"
    os.mkfifo(pipe)
    done = subprocess.run(
        [sys.executable, "-m", "connectbatch", "parse", str(pipe)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "CONNECTBATCH_HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        f"connectbatch: error: cannot parse {pipe}: it is a pipe; save it to a file first"
    )


@pytest.mark.parametrize("now", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_lock_now_past_the_calendars_ends_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], now: str
) -> None:
    """An offset that moved the time past year 1 or 9999 was "internal error: OverflowError"."""
    usage_error(
        capsys, "lock", "--now", now, "--early", mentions="is out of range: in UTC it is before year 1"
    )
