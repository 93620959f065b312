"""CLI audit, 2026-12-07: a CONNECTBATCH_* value that cannot work stops the command at start
with one line naming the variable, instead of a bare errno, a DuckDB message, an internal
error, or every partner's file failing later."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import cli, cli_error

from connectbatch import settings as settings_module
from connectbatch.errors import ConfigurationError
from connectbatch.settings import Settings


def test_debug_0_and_false_are_off_and_a_word_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any non-empty value, "0" included, turned the logs and tracebacks on."""
    for off in ("0", "false", "no", ""):
        monkeypatch.setenv("CONNECTBATCH_DEBUG", off)
        assert settings_module.debug_enabled() is False, off
    monkeypatch.setenv("CONNECTBATCH_DEBUG", "yes")
    assert settings_module.debug_enabled() is True
    monkeypatch.setenv("CONNECTBATCH_DEBUG", "perhaps")
    assert settings_module.debug_enabled() is False
    with pytest.raises(ConfigurationError, match=r"^CONNECTBATCH_DEBUG must be true or false"):
        Settings.from_env()


@pytest.mark.parametrize("value", ["bad", "cb@example.com\r\nBcc: x@evil.example", "<>"])
def test_a_sender_address_no_relay_takes_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CONNECTBATCH_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("CONNECTBATCH_SMTP_FROM", value)
    with pytest.raises(ConfigurationError, match=r"^CONNECTBATCH_SMTP_FROM must be an e-mail address"):
        Settings.from_env()
    monkeypatch.setenv("CONNECTBATCH_SMTP_FROM", "ConnectBatch <cb@example.com>")
    smtp = Settings.from_env().smtp
    assert smtp is not None and smtp.sender == "ConnectBatch <cb@example.com>"


def test_a_redis_url_that_is_no_url_is_refused_in_distributed_mode(
    monkeypatch: pytest.MonkeyPatch, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`workers` ended in "internal error: ValueError: Redis URL must specify ..."."""
    monkeypatch.setenv("CONNECTBATCH_REDIS_URL", "localhost:6379")
    assert Settings.from_env().redis_url == "localhost:6379"  # embedded mode never connects
    monkeypatch.setenv("CONNECTBATCH_MODE", "distributed")
    cli_error(capsys, "workers", mentions="CONNECTBATCH_REDIS_URL must be a Redis URL")


def test_a_data_directory_that_is_a_file_is_named_by_every_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runs` said "cannot open the database .../connectbatch.duckdb: IO Error: ...", `demo`
    "[Errno 20] Not a directory: '.../demo'"; neither named the variable."""
    a_file = tmp_path / "data"
    a_file.write_text("")
    monkeypatch.setenv("CONNECTBATCH_HOME", str(a_file))
    for command in (["runs"], ["demo"], ["user", "list"]):
        cli_error(
            capsys, *command, mentions=f"the data directory {a_file} (CONNECTBATCH_HOME) cannot be used"
        )


def test_a_database_path_that_is_a_folder_or_cannot_be_made_is_named(
    monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONNECTBATCH_DB", str(tmp_path))
    cli_error(
        capsys, "runs", mentions=f"the database {tmp_path} (CONNECTBATCH_DB) cannot be used: it is a folder"
    )
    (tmp_path / "a-file").write_text("")
    inside_a_file = tmp_path / "a-file" / "db" / "cb.duckdb"
    monkeypatch.setenv("CONNECTBATCH_DB", str(inside_a_file))
    cli_error(capsys, "runs", mentions="(CONNECTBATCH_DB) cannot be used: Not a directory")


def test_a_secret_key_that_is_no_key_is_refused_at_start_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was found only when a credential was stored or read; `credentials list` said nothing."""
    monkeypatch.setenv("CONNECTBATCH_SECRET_KEY", "my-s3cret-passphrase")
    line = cli_error(
        capsys, "connection", "list", mentions="CONNECTBATCH_SECRET_KEY is not a valid Fernet key"
    )
    assert "s3cret" not in line


def test_a_chosen_expectations_folder_that_is_missing_or_a_file_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing, the generated suites silently stood in for the operator's own rules; a file,
    every partner's file failed validation with "cannot read the expectation suite"."""
    cli(capsys, "partner", "add", "Acme", "--type", "vendor")
    (tmp_path / "suites.json").write_text("{}")
    for chosen in (tmp_path / "missing", tmp_path / "suites.json"):
        monkeypatch.setenv("CONNECTBATCH_EXPECTATIONS_DIR", str(chosen))
        cli_error(capsys, "runs", mentions=f"CONNECTBATCH_EXPECTATIONS_DIR {chosen} is not a folder")
    monkeypatch.setenv("CONNECTBATCH_EXPECTATIONS_DIR", str(tmp_path))
    assert "no runs" in cli(capsys, "runs")


@pytest.mark.parametrize("value", ["sftp example.com", "sftp.example.com\nPassword: x", "\x1b[31mhost"])
def test_a_public_host_that_is_no_host_name_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """It was printed with every provisioned login, a line break and all."""
    monkeypatch.setenv("CONNECTBATCH_PUBLIC_HOST", value)
    with pytest.raises(ConfigurationError, match=r"^CONNECTBATCH_PUBLIC_HOST must be a host name"):
        Settings.from_env()
    monkeypatch.setenv("CONNECTBATCH_PUBLIC_HOST", " sftp.example.com ")
    assert Settings.from_env().public_host == "sftp.example.com"
