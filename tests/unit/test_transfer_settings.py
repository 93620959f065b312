"""Typed transfer settings per method: every field reachable from the CLI, checked once at the
services boundary, stored with the connection, and what the transports receive."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from connectbatch.cli import main
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import CredentialInput, InvalidInputError, Services
from connectbatch.settings import Settings
from connectbatch.transfer.pull.login import endpoint_for
from connectbatch.transfer.specs import (
    AuthKind,
    FtpSpec,
    FtpTls,
    ImapSecurity,
    ImapSpec,
    SftpSpec,
    check_spec,
    spec_from_json,
    spec_to_json,
)

FINGERPRINT = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
PULL = ["--direction", "inbound", "--methodology", "pull", "--username", "u", "--password", "p"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def settings_of(capsys: pytest.CaptureFixture[str], name: str) -> dict[str, Any]:
    code, out, _err = run(capsys, "connection", "show", name, "--json")
    assert code == 0
    found: dict[str, Any] = json.loads(out)["connection"]["transfer"]
    return found


def test_every_spec_field_has_a_cli_flag_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("add", "edit"):
        assert main(["connection", command, "--help"]) == 0
        shown = capsys.readouterr().out
        for flag in ("--ftp-tls", "--tls-verify", "--no-tls-verify", "--ca-file", "--passive",
                     "--imap-security", "--imap-processed-flag", "--imap-move-to", "--imap-recipient",
                     "--host-key-fingerprint", "--sftp-ciphers", "--sftp-request-size", "--auth",
                     "--key-passphrase-stdin", "--key-passphrase-file"):  # fmt: skip
            assert flag in shown, (command, flag)


def test_ftps_settings_from_the_cli_are_stored_and_editable(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    code, out, err = run(capsys, "connection", "add", "--name", "Ftps", "--method", "ftp", *PULL,
                         "--host", "ftp.partner.example", "--folder", "/out", "--ftp-tls", "implicit",
                         "--ca-file", str(ca), "--no-passive")  # fmt: skip
    assert code == 0, err
    assert "ftp-tls implicit" in out
    assert settings_of(capsys, "Ftps") == {
        "tls": "implicit", "verify": True, "ca_file": str(ca.resolve()), "passive": False
    }  # fmt: skip
    assert run(capsys, "connection", "edit", "Ftps", "--no-tls-verify", "--ca-file", "")[0] == 0
    cleared = {"tls": "implicit", "verify": False, "ca_file": None, "passive": False}
    assert settings_of(capsys, "Ftps") == cleared


def test_imap_settings_from_the_cli(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "connection", "add", "--name", "Mail", "--method", "email", *PULL,
                          "--pattern", "*.csv",
                          "--host", "imap.partner.example", "--imap-security", "starttls",
                          "--imap-move-to", "/Done", "--imap-recipient", "calls@brand.example",
                          "--imap-processed-flag", "\\Seen")  # fmt: skip
    assert code == 0, err
    assert settings_of(capsys, "Mail") == {
        "security": "starttls", "verify": True, "ca_file": None, "processed_flag": "\\Seen",
        "move_to": "Done", "recipient": "calls@brand.example", "allowed_senders": [],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["--method", "sftp", "--host", "h", "--folder", "/in", "--ftp-tls", "explicit"],
         "--ftp-tls: not a setting of SFTP connections"),
        (["--method", "sftp", "--host", "h", "--folder", "/in", "--host-key-fingerprint", "MD5:aa"],
         "--host-key-fingerprint: 'MD5:aa' is not a SHA256 fingerprint"),
        (["--method", "ftp", "--host", "h", "--folder", "/in", "--ca-file", "/nope.pem"],
         "--ca-file: '/nope.pem' is not a readable file"),
        (["--method", "email", "--pattern", "*.csv", "--host", "mail.partner.example",
          "--imap-security", "plain"],
         "--imap-security: plain IMAP to mail.partner.example would send the password unencrypted"),
        (["--method", "email", "--pattern", "*.csv", "--host", "h", "--imap-recipient", "nobody"],
         "--imap-recipient: 'nobody' is not an e-mail address"),
        (["--method", "ftp", "--host", "h", "--folder", "/in", "--auth", "key"],
         "--auth: SSH keys log in to SFTP servers only"),
        (["--method", "sftp", "--host", "h", "--folder", "/in", "--sftp-request-size", "10"],
         "--sftp-request-size: must be between 4096"),
        # an operator audit: saved, then every pull failed with "unsupported SFTP cipher(s)"
        (["--method", "sftp", "--host", "h", "--folder", "/in", "--sftp-ciphers", "aes256-ctr,bad-cipher"],
         "--sftp-ciphers: unsupported bad-cipher (available: aes128-ctr"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_flag(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], mentions: str
) -> None:
    code, out, err = run(capsys, "connection", "add", "--name", "Bad", *PULL, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and mentions in err, err


def _key(passphrase: bytes | None) -> str:
    algorithm = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, algorithm)
        .decode()
    )


def test_key_passphrase_comes_from_stdin_and_is_stored_encrypted(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(_key(b"correct horse"))
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    code, _out, err = run(capsys, "connection", "add", "--name", "Keyed", "--direction", "inbound",
                          "--methodology", "pull", "--method", "sftp", "--host", "sftp.partner.example",
                          "--folder", "/in", "--username", "acme", "--auth", "key",
                          "--key-file", str(key_file), "--key-passphrase-stdin")  # fmt: skip
    assert code == 0, err
    services = Services(Settings.from_env())
    connection = services.connection("Keyed")
    (credential,) = services.credentials("Keyed")
    assert credential.auth is AuthKind.KEY and credential.has_passphrase
    endpoint, _id = endpoint_for(services.db, services.box, connection)
    assert endpoint.key_passphrase == "correct horse" and endpoint.password is None
    assert endpoint.private_key == key_file.read_text()
    database = (home / "connectbatch.duckdb").read_bytes()
    assert b"correct horse" not in database


def test_wrong_passphrase_is_refused_before_anything_is_stored(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key_file, phrase = tmp_path / "id", tmp_path / "phrase"
    key_file.write_text(_key(b"right"))
    phrase.write_text("wrong\n")
    code, _out, err = run(capsys, "connection", "add", "--name", "K", "--direction", "inbound",
                          "--methodology", "pull", "--method", "sftp", "--host", "h", "--folder", "/in",
                          "--username", "u", "--key-file", str(key_file),
                          "--key-passphrase-file", str(phrase))  # fmt: skip
    assert code == 2 and "--key-file:" in err
    assert run(capsys, "connection", "list", "--json")[1].strip() == "[]"


def test_a_password_that_looks_like_a_key_stays_a_password(tmp_path: Path) -> None:
    """The person chose password: the secret's shape no longer decides."""
    services = Services(Settings(home=tmp_path))
    draft = Connection(name="P", data_type="call_conversions", direction=Direction.INBOUND,
                       method=Method.SFTP, methodology=Methodology.PULL, host="h", folder="/in")  # fmt: skip
    secret = "-----BEGIN but really my password"
    services.create_connection(
        draft, CredentialInput(name="x", username="u", password=secret, auth=AuthKind.PASSWORD)
    )
    endpoint, _id = endpoint_for(services.db, services.box, services.connection("P"))
    assert endpoint.password == secret and endpoint.private_key is None


def test_services_fill_in_the_method_defaults_and_refuse_the_wrong_spec(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path))
    draft = Connection(name="F", data_type="call_conversions", direction=Direction.INBOUND,
                       method=Method.FTP, methodology=Methodology.PULL, host="h", folder="/in")  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput(name="x", username="u", password="p"))
    assert created.transfer == FtpSpec()
    with pytest.raises(InvalidInputError, match="SftpSpec is not for ftp connections"):
        services.update_connection("F", transfer=SftpSpec())
    updated = services.update_connection("F", transfer=FtpSpec(tls=FtpTls.EXPLICIT))
    assert services.connection("F").transfer == updated.transfer == FtpSpec(tls=FtpTls.EXPLICIT)


@pytest.mark.parametrize(
    "spec",
    [
        SftpSpec(host_key_fingerprint=FINGERPRINT, ciphers="aes256-ctr", request_size=65536),
        FtpSpec(tls=FtpTls.EXPLICIT, verify=False, passive=False),
        ImapSpec(security=ImapSecurity.STARTTLS, move_to="Done", recipient="a@b.example"),
    ],
)
def test_specs_round_trip_through_json(spec: SftpSpec | FtpSpec | ImapSpec) -> None:
    method = {SftpSpec: "sftp", FtpSpec: "ftp", ImapSpec: "email"}[type(spec)]
    assert spec_from_json(method, spec_to_json(spec)) == spec


def test_stored_settings_from_an_older_or_newer_version_still_load() -> None:
    assert spec_from_json("ftp", None) == FtpSpec()
    assert spec_from_json("ftp", '{"tls": "explicit", "someday": 1}') == FtpSpec(tls=FtpTls.EXPLICIT)


def test_fingerprint_is_normalised_and_checked() -> None:
    checked = check_spec(SftpSpec(host_key_fingerprint=f"  {FINGERPRINT}= "), None)
    assert isinstance(checked, SftpSpec) and checked.host_key_fingerprint == FINGERPRINT


def test_new_ftp_connections_require_tls_and_older_ones_keep_plain_ftp(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path))
    draft = Connection(name="New", data_type="call_conversions", direction=Direction.INBOUND,
                       method=Method.FTP, methodology=Methodology.PULL, host="h", folder="/in")  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput(name="x", username="u", password="p"))
    assert isinstance(created.transfer, FtpSpec) and created.transfer.tls is FtpTls.EXPLICIT
    # A connection stored before typed settings existed (no settings at all) pulled over
    # plain FTP: the migration keeps it so.
    with services.db.transaction() as con:
        con.execute("UPDATE connections SET name = 'Old', transfer = NULL WHERE id = ?", [created.id])
        con.execute("DELETE FROM schema_migrations WHERE version = 8")
    old = Services(Settings(home=tmp_path)).connection("Old")
    assert old.transfer == FtpSpec(tls=FtpTls.NONE)


def _pull(method: Method, host: str) -> Connection:
    folder = None if method is Method.EMAIL else "/in"
    return Connection(name="Pull", data_type="call_conversions", direction=Direction.INBOUND,
                      method=method, methodology=Methodology.PULL, host=host, folder=folder)  # fmt: skip


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("bad host!! <b>x</b>", "contains a space"),
        ("sftp://files.partner.example", "give the host alone, without sftp://"),
        ("files.partner.example:2222", "give 'files.partner.example' here and 2222 in the port field"),
        ("[2001:db8::1]:22", "has a port: give it in the port field"),
        ("files.partner.example/outgoing", "has a path"),
        ("me@files.partner.example", "the user name goes with the login"),
        ("files_partner.example", "contains '_'"),
        ("-files.partner.example", "starts or ends with a hyphen"),
        ("files..partner.example", "empty part between dots"),
        ("x" * 64 + ".example", "longer than 63 characters"),
        ("a." * 127 + "example", "longer than 253 characters"),
        ("300.1.2.3", "is not an IPv4 address"),
        ("2001:db8::zz", "is not an IPv6 address"),
    ],
)
@pytest.mark.parametrize("method", [Method.SFTP, Method.FTP, Method.EMAIL])
def test_a_host_that_cannot_be_reached_is_refused_with_what_is_wrong(
    tmp_path: Path, method: Method, host: str, says: str
) -> None:
    services = Services(Settings(home=tmp_path))
    with pytest.raises(InvalidInputError) as refused:
        services.create_connection(_pull(method, host), CredentialInput(name="x", username="u", password="p"))
    assert refused.value.field == "host" and says in str(refused.value), str(refused.value)
    assert services.connections() == []


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        (" SFTP.Partner.example ", "SFTP.Partner.example"),
        ("files.partner.example.", "files.partner.example."),
        ("::1", "::1"),
        ("[2001:DB8::1]", "2001:db8::1"),  # bare, as sockets take it and host keys are pinned
    ],
)
def test_host_names_and_ip_addresses_are_accepted_and_ipv6_is_stored_bare(
    tmp_path: Path, host: str, stored: str
) -> None:
    services = Services(Settings(home=tmp_path))
    created, _ = services.create_connection(
        _pull(Method.SFTP, host), CredentialInput(name="x", username="u", password="p")
    )
    assert created.host == services.connection("Pull").host == stored


def test_an_edit_to_a_bad_host_is_refused_and_a_pull_needs_one(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path))
    services.create_connection(_pull(Method.EMAIL, "imap.partner.example"), CredentialInput("x", "u", "p"))
    with pytest.raises(InvalidInputError, match=re.escape("host: 'imap.partner.example:993' has a port")):
        services.update_connection("Pull", host="imap.partner.example:993")
    with pytest.raises(InvalidInputError, match="host: is required"):
        services.update_connection("Pull", host="  ")
    assert services.connection("Pull").host == "imap.partner.example"


def test_a_bad_host_from_the_cli_names_the_flag(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "connection", "add", "--name", "Bad", *PULL, "--method", "sftp",
                         "--folder", "/in", "--host", "sftp://files.partner.example")  # fmt: skip
    assert (code, out) == (2, "")
    assert "--host: 'sftp://files.partner.example' is a URL: give the host alone" in err, err
    code, _out, err = run(capsys, "connection", "add", "--name", "Good", *PULL, "--method", "sftp",
                          "--folder", "/in", "--host", "files.partner.example")  # fmt: skip
    assert code == 0, err
    code, _out, err = run(capsys, "connection", "edit", "Good", "--host", "files.partner.example:22")
    assert code == 2 and "--host: 'files.partner.example:22' has a port" in err, err
