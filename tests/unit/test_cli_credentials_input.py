"""`connectbatch credentials add / main / add-key` with what a person may give them: a
credential name with control characters prints escaped (it is partner or analyst text), a
public key file that cannot be read is one error line naming the flag and the path, a pull's
new login without its secret is refused before it becomes main, and a push connection's
login, which we provision, takes no user name or secret (they were silently dropped)."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from helpers.cli import cli, cli_error, cli_json

from connectbatch.services import CredentialInput, InvalidInputError, Services
from connectbatch.settings import Settings

SFTP_PULL = [
    "--direction", "inbound", "--method", "sftp", "--methodology", "pull",
    "--host", "sftp.vendor.example", "--folder", "/outgoing",
]  # fmt: skip
FTP_PULL = [
    "--direction", "inbound", "--method", "ftp", "--methodology", "pull",
    "--host", "ftp.vendor.example", "--folder", "/outgoing",
]  # fmt: skip
SFTP_PUSH = ["--direction", "inbound", "--method", "sftp", "--methodology", "push"]
# A newline, an ANSI colour escape, a terminal-title escape and a right-to-left override.
HOSTILE = "rotated\n2026-01-01 forged line \x1b[31mred\x1b]0;title\x07 \u202egnp.exe"


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


@pytest.fixture
def vendor(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """An SFTP pull connection with a password login."""
    _stdin(monkeypatch, "s3cret-Pa55\n")
    cli(capsys, "connection", "add", "--name", "Vendor", *SFTP_PULL, "--username", "acme", "--password-stdin")
    return "Vendor"


@pytest.fixture
def drop(home: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A push connection: the partner logs in to our SFTP server with a login we provision."""
    cli(capsys, "connection", "add", "--name", "Drop", *SFTP_PUSH)
    return "Drop"


def _assert_escaped(out: str) -> None:
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[31mred" in out and "\\u202e" in out
    assert "forged line" in out and "\n2026-01-01" not in out  # no line of its own


# ------------------------------------------------------------------ 1. names print escaped


def test_add_and_main_print_a_hostile_credential_name_escaped(
    vendor: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    [first] = cli_json(capsys, "credentials", "list", vendor)
    _stdin(monkeypatch, "n3w-Pa55\n")

    added = cli(
        capsys, "credentials", "add", vendor, "--name", HOSTILE, "--username", "acme", "--password-stdin"
    )

    assert added.count("\n") == 1 and added.endswith(") is now main\n")
    _assert_escaped(added)
    [rotated, _first] = cli_json(capsys, "credentials", "list", vendor)
    assert rotated["name"] == HOSTILE  # stored as given; only printing escapes it
    cli(capsys, "credentials", "main", str(first["id"]))
    again = cli(capsys, "credentials", "main", str(rotated["id"]))
    assert again.count("\n") == 1
    _assert_escaped(again)


def test_add_prints_a_push_credential_name_escaped(drop: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(capsys, "credentials", "add", drop, "--name", HOSTILE)

    first = out.splitlines()[0]
    assert first.endswith(") is now main") and "password" in out
    _assert_escaped(first + "\n")


# ---------------------------------------------------------- 2. add-key --public-key-file


def _public_key() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line.decode() + " partner@batch\n"


def _provisioned_id(capsys: pytest.CaptureFixture[str], connection: str) -> str:
    [credential] = cli_json(capsys, "credentials", "list", connection)
    return str(credential["id"])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp, "Is a directory"),
        (lambda tmp: tmp / "id_ed25519.pub", "No such file or directory"),
        (lambda tmp: Path("/etc/hostname/id_ed25519.pub"), "Not a directory"),
        (lambda tmp: _write(tmp / "latin1.pub", b"ssh-ed25519 AAAA caf\xe9\n"), "not a UTF-8 text file"),
        (lambda tmp: _write(tmp / "huge.pub", b"A" * (64 * 1024 + 1)), None),
    ],
    ids=["directory", "missing", "under-a-file", "not-utf8", "too-big"],
)
def test_add_key_with_a_file_it_cannot_use_is_one_line_naming_flag_and_path(
    drop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, reason: str | None
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    credential_id = _provisioned_id(capsys, drop)
    too_big = f"--public-key-file: {path} is larger than 65,536 bytes: too big for an OpenSSH public key"

    line = cli_error(
        capsys, "credentials", "add-key", credential_id, "--public-key-file", str(path),
        mentions=f"--public-key-file: cannot read {path}: {reason}" if reason else too_big,
    )  # fmt: skip

    assert "Errno" not in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_add_key_with_an_unreadable_file(
    drop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "id_ed25519.pub", _public_key().encode())
    path.chmod(0)
    cli_error(
        capsys, "credentials", "add-key", _provisioned_id(capsys, drop), "--public-key-file", str(path),
        mentions=f"--public-key-file: cannot read {path}: Permission denied",
    )  # fmt: skip


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_add_key_reads_a_bounded_amount(drop: str, capsys: pytest.CaptureFixture[str]) -> None:
    """/dev/zero was read until memory ran out."""
    cli_error(
        capsys, "credentials", "add-key", _provisioned_id(capsys, drop), "--public-key-file", "/dev/zero",
        mentions="--public-key-file: /dev/zero is larger than 65,536 bytes",
    )  # fmt: skip


def test_add_key_takes_a_public_key_and_names_the_flag_for_one_that_is_not(
    drop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credential_id = _provisioned_id(capsys, drop)
    good = _write(tmp_path / "id_ed25519.pub", _public_key().encode())
    added = cli_json(capsys, "credentials", "add-key", credential_id, "--public-key-file", str(good))
    assert added["fingerprint"].startswith("SHA256:")

    bad = _write(tmp_path / "id_ed25519", b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    cli_error(
        capsys, "credentials", "add-key", credential_id, "--public-key-file", str(bad),
        mentions=f"--public-key-file: {bad}: not an OpenSSH public key",
    )  # fmt: skip


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ------------------------------------------------------- 3. a pull's login needs a secret


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["--username", "acme"], "--password-stdin (or --key-file): is required to log in"),
        (["--name", "rotated"], "--username: is required to log in"),
        (["--username", "  ", "--password-stdin"], "--username: is required to log in"),
        (["--username", "acme", "--auth", "password"], "--password-stdin: is required to log in"),
        (["--username", "acme", "--auth", "key"], "--key-file: is required for a key login"),
    ],
    ids=["no-secret", "no-username", "blank-username", "password-chosen", "key-chosen"],
)
def test_add_for_a_pull_without_a_complete_login_changes_nothing(
    vendor: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    mentions: str,
) -> None:
    """It stored a login without a password as main: every pull failed from then on."""
    before = cli_json(capsys, "credentials", "list", vendor)
    _stdin(monkeypatch, "n3w-Pa55\n")

    line = cli_error(capsys, "credentials", "add", vendor, *argv, mentions=mentions)

    assert "no credential was added" in line or "key login" in line
    assert cli_json(capsys, "credentials", "list", vendor) == before


def test_add_for_an_ftp_pull_without_a_password_names_only_the_password_flag(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _stdin(monkeypatch, "s3cret-Pa55\n")
    cli(capsys, "connection", "add", "--name", "Files", *FTP_PULL, "--username", "acme", "--password-stdin")

    line = cli_error(
        capsys, "credentials", "add", "Files", "--username", "acme", mentions="--password-stdin:"
    )

    assert "--key-file" not in line
    [only] = cli_json(capsys, "credentials", "list", "Files")
    assert only["main"] is True


def test_the_service_refuses_a_pull_login_without_a_secret(vendor: str) -> None:
    """The check is the service's: every caller (the app, scripts) gets it, not only the CLI."""
    services = Services(Settings.from_env())

    with pytest.raises(InvalidInputError) as refused:
        services.add_credential(vendor, CredentialInput(name="rotated", username="acme"))

    assert refused.value.field == "password"
    assert [c.name for c in services.credentials(vendor)] == ["Vendor login"]


# ------------------------------------------------ 4. a push's login is provisioned by us


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--username", "chosen"], "--username"),
        (["--password-stdin"], "--password-stdin"),
        (["--auth", "password"], "--auth"),
    ],
)
def test_add_for_a_push_refuses_a_login_of_our_choosing(
    drop: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    flag: str,
) -> None:
    """--username was silently dropped: the partner was told a user name that cannot log in."""
    before = cli_json(capsys, "credentials", "list", drop)
    _stdin(monkeypatch, "chosen-Pa55\n")

    line = cli_error(capsys, "credentials", "add", drop, *argv, mentions=f"{flag}: cannot be chosen")

    assert "ConnectBatch provisions its login" in line
    assert cli_json(capsys, "credentials", "list", drop) == before


def test_add_for_a_push_still_provisions_a_new_login_shown_once(
    drop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    added = cli_json(capsys, "credentials", "add", drop, "--name", "rotated")

    assert added["main"] is True and added["name"] == "rotated"
    assert added["provisioned"]["username"].startswith("cb_drop_") and added["provisioned"]["password"]
    assert [c["main"] for c in cli_json(capsys, "credentials", "list", drop)] == [True, False]


def test_connection_edit_with_a_login_that_cannot_work_saves_nothing(
    vendor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`connection edit` saved its other changes (the pattern), then refused the new login:
    half an edit. The login is now checked before anything is saved."""
    before = cli_json(capsys, "connection", "show", vendor)

    cli_error(
        capsys,
        "connection",
        "edit",
        vendor,
        "--pattern",
        "*.txt",
        "--credential-name",
        "rotated",
        mentions="password",
    )

    assert cli_json(capsys, "connection", "show", vendor) == before
