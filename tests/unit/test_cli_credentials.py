"""`connectbatch credentials ...` as a person rotating a login uses it: `add` takes what
`connection add` takes for a key (a passphrase-protected key with its passphrase, from stdin or
a file), a key file that cannot be read is one error line naming the flag, and `main` and
`delete` print one JSON document with `--json`, like the other credentials commands."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from helpers.cli import cli, cli_error, cli_json

PULL = [
    "--direction", "inbound", "--method", "sftp", "--methodology", "pull",
    "--host", "sftp.vendor.example", "--folder", "/outgoing",
]  # fmt: skip


@pytest.fixture
def vendor(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A pull connection with a password login."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-Pa55\n"))
    cli(capsys, "connection", "add", "--name", "Vendor", *PULL, "--username", "acme", "--password-stdin")
    return "Vendor"


def encrypted_key(tmp_path: Path, passphrase: str) -> Path:
    """An OpenSSH private key, as `ssh-keygen -N passphrase` writes it."""
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "id_ed25519"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    return path


def test_add_takes_a_passphrase_protected_key_with_its_passphrase(
    vendor: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = encrypted_key(tmp_path, "open sesame")
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text("open sesame\n")

    added = cli_json(
        capsys, "credentials", "add", vendor, "--username", "acme", "--key-file", str(key),
        "--key-passphrase-file", str(passphrase_file),
    )  # fmt: skip
    assert added["main"] is True and added["username"] == "acme"

    monkeypatch.setattr(sys, "stdin", io.StringIO("open sesame\n"))
    out = cli(
        capsys, "credentials", "add", vendor, "--name", "rotated", "--username", "acme",
        "--key-file", str(key), "--key-passphrase-stdin",
    )  # fmt: skip
    assert "(rotated) is now main" in out and "open sesame" not in out

    cli_error(
        capsys, "credentials", "add", vendor, "--username", "acme", "--key-file", str(key),
        mentions="--key-file: the private key is protected by a passphrase",
    )  # fmt: skip


def test_add_with_an_unreadable_key_file_names_the_flag(
    vendor: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no_such_key"

    line = cli_error(capsys, "credentials", "add", vendor, "--key-file", str(missing), mentions="--key-file")

    assert "cannot read" in line and "Errno" not in line


def test_main_and_delete_print_json(
    vendor: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README: every command takes --json; a script rotating logins reads what it did."""
    [first] = cli_json(capsys, "credentials", "list", vendor)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n3w-Pa55\n"))
    second = cli_json(capsys, "credentials", "add", vendor, "--username", "acme", "--password-stdin")

    made_main = cli_json(capsys, "credentials", "main", str(first["id"]))
    assert (made_main["id"], made_main["main"]) == (first["id"], True)

    assert cli_json(capsys, "credentials", "delete", str(second["id"])) == {"deleted": second["id"]}
    assert [c["id"] for c in cli_json(capsys, "credentials", "list", vendor)] == [first["id"]]


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (
            ["--method", "sftp", "--methodology", "push"],
            "'Other' is Push to us: the partner logs in to our SFTP server",
        ),
        (
            ["--method", "email", "--methodology", "push", "--pattern", "*.csv"],
            "'Other' is not an SFTP connection",
        ),
        (
            ["--method", "ftp", "--methodology", "pull", "--host", "ftp.vendor.example", "--folder", "/x"],
            "'Other' is not an SFTP connection",
        ),
    ],
)
def test_host_key_of_a_connection_that_pins_none_says_why(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], mentions: str
) -> None:
    """It said 'no host key pinned yet: the next pull pins the key the server presents' (exit 0)
    for connections no pull of ours ever reaches over SFTP."""
    cli(capsys, "connection", "add", "--name", "Other", "--direction", "inbound", *argv)

    cli_error(capsys, "credentials", "host-key", "Other", mentions=mentions)
    cli_error(
        capsys, "credentials", "accept-host-key", "Other",
        "--fingerprint", "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", mentions=mentions,
    )  # fmt: skip


def test_host_key_of_an_sftp_pull_not_reached_yet(vendor: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no host key pinned yet" in cli(capsys, "credentials", "host-key", vendor)
    assert cli_json(capsys, "credentials", "host-key", vendor) is None
