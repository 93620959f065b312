"""SFTP host-key pinning that no credential can bypass, against a real OpenSSH sshd.

The pin belongs to the server (host and port). Attacks tried: the server's key changes and
someone rotates the login (adds a new credential) hoping the new one trusts afresh; someone
accepts a changed key without checking it, or with a fingerprint that is not the server's."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import paramiko
import pytest
from helpers import call_csv
from sshd import Sshd

from connectbatch.cli import main
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.services.base import InvalidInputError
from connectbatch.settings import Settings

pytest_plugins = ["sshd"]

CSV = call_csv(1, prefix="pin")


def fingerprint_of(public_line: str, tmp_path: Path) -> str:
    """What `ssh-keygen -lf` prints: the fingerprint a person reads out to the partner."""
    path = tmp_path / "key.pub"
    path.write_text(public_line + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return out.split()[1]


def sftp_pull(services: Services, server: Sshd, folder: Path, name: str = "Partner SFTP") -> Connection:
    draft = Connection(
        name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=server.host, port=server.port, folder=str(folder), pattern="*.csv",
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", server.user, server.password))
    return created


def other_key_line() -> str:
    key = paramiko.Ed25519Key.from_private_key(_new_ed25519())
    return f"{key.get_name()} {key.get_base64()}"


def _new_ed25519() -> Any:
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    text = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    return io.StringIO(text.decode())


def server_changes_its_key(services: Services, server: Sshd) -> str:
    """From the client's side a reinstalled (or impersonated) server: the pinned key is no
    longer the one it presents. Returns the key that was pinned instead."""
    line = other_key_line()
    with services.db.transaction() as con:
        con.execute(
            "UPDATE host_keys SET host_key = ?, fingerprint = NULL WHERE host = ? AND port = ?",
            [line, server.host, server.port],
        )
    return line


@pytest.fixture
def logins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every user name a login was attempted for (password or key): nothing must be sent to
    a server whose key is not the pinned one."""
    seen: list[str] = []
    real_password, real_key = paramiko.Transport.auth_password, paramiko.Transport.auth_publickey

    def password(self: paramiko.Transport, username: str, *a: Any, **k: Any) -> Any:
        seen.append(username)
        return real_password(self, username, *a, **k)

    def publickey(self: paramiko.Transport, username: str, *a: Any, **k: Any) -> Any:
        seen.append(username)
        return real_key(self, username, *a, **k)

    monkeypatch.setattr(paramiko.Transport, "auth_password", password)
    monkeypatch.setattr(paramiko.Transport, "auth_publickey", publickey)
    return seen


def test_the_first_pull_pins_the_key_and_shows_its_fingerprint(
    services: Services, settings: Settings, sshd_server: Sshd, sftp_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    sftp_pull(services, sshd_server, sftp_folder)
    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    expected = fingerprint_of(sshd_server.host_keys["ed25519"], tmp_path)

    assert main(["pull", "Partner SFTP"]) == 0

    out = capsys.readouterr().out
    assert expected in out and "pinned" in out
    pinned = services.host_key("Partner SFTP")
    assert pinned is not None and pinned.fingerprint == expected
    assert pinned.host_key == sshd_server.host_keys["ed25519"]
    assert main(["credentials", "host-key", "Partner SFTP"]) == 0
    assert expected in capsys.readouterr().out


def test_a_changed_key_fails_a_new_credential_too_and_sends_nothing(
    services: Services, sshd_server: Sshd, sftp_folder: Path, logins: list[str]
) -> None:
    sftp_pull(services, sshd_server, sftp_folder)
    assert services.pull("Partner SFTP").status is RunStatus.COMPLETED  # first use pins
    server_changes_its_key(services, sshd_server)
    sshd_server.put(sftp_folder, "calls.csv", CSV)
    # Rotation: a new login becomes main. It must not bring a fresh, empty pin with it.
    services.add_credential("Partner SFTP", CredentialInput("rotated", sshd_server.user, "rotated-secret-7Q"))
    logins.clear()

    run = services.pull("Partner SFTP")

    assert run.status is RunStatus.FAILED and "host key" in (run.reason or "")
    assert logins == []  # refused before any password left us
    assert run.files_loaded == 0 and (sftp_folder / "calls.csv").exists()
    main_credential = services.credentials("Partner SFTP")[0]
    assert main_credential.name == "rotated" and main_credential.status == "Error"


def test_accepting_needs_the_fingerprint_the_server_presented(
    services: Services, settings: Settings, sshd_server: Sshd, sftp_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    sftp_pull(services, sshd_server, sftp_folder)
    services.pull("Partner SFTP")
    old = server_changes_its_key(services, sshd_server)
    assert services.pull("Partner SFTP").status is RunStatus.FAILED
    real = fingerprint_of(sshd_server.host_keys["ed25519"], tmp_path)
    wrong = fingerprint_of(other_key_line(), tmp_path)
    shown = services.host_key("Partner SFTP")
    assert shown is not None and shown.presented_fingerprint == real
    assert shown.fingerprint == fingerprint_of(old, tmp_path)  # both are shown, old and new

    with pytest.raises(InvalidInputError, match="not the key the server presented"):
        services.accept_host_key("Partner SFTP", wrong)
    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    assert main(["credentials", "accept-host-key", "Partner SFTP", "--fingerprint", wrong]) != 0
    assert main(["credentials", "accept-host-key", "Partner SFTP"]) != 0  # no "just trust it"
    after = services.host_key("Partner SFTP")
    assert after is not None and after.host_key == old  # nothing changed
    assert services.pull("Partner SFTP").status is RunStatus.FAILED

    capsys.readouterr()
    assert main(["credentials", "accept-host-key", "Partner SFTP", "--fingerprint", real]) == 0
    assert real in capsys.readouterr().out
    sshd_server.put(sftp_folder, "calls.csv", CSV)
    run = services.pull("Partner SFTP")
    assert run.status is RunStatus.COMPLETED and run.files_loaded == 1
    accepted = services.host_key("Partner SFTP")
    assert accepted is not None and accepted.presented_key is None
    assert services.credentials("Partner SFTP")[0].status == "Active"


def test_a_fingerprint_given_in_advance_is_still_enforced(
    services: Services, sshd_server: Sshd, sftp_folder: Path, tmp_path: Path, logins: list[str]
) -> None:
    from connectbatch.transfer.specs import SftpSpec

    draft = Connection(
        "Given", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=sshd_server.host, port=sshd_server.port, folder=str(sftp_folder), pattern="*.csv",
        transfer=SftpSpec(host_key_fingerprint=fingerprint_of(other_key_line(), tmp_path)),
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", sshd_server.user, sshd_server.password))
    run = services.pull("Given")
    assert run.status is RunStatus.FAILED and "given in advance" in (run.reason or "")
    assert logins == []
    pinned = services.host_key("Given")
    assert pinned is None or pinned.host_key is None  # nothing pinned from a mismatch


def test_pins_move_from_credentials_to_their_server(settings: Settings, services: Services) -> None:
    """Migration 007: a database pinned per credential keeps its pins, now per server."""
    draft = Connection(
        "Old", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host="SFTP.Partner.example", port=None, folder="/out", pattern="*.csv",
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("old", "user", "pw"))
    line = other_key_line()
    with services.db.transaction() as con:  # back to the state before migration 007
        con.execute("DROP TABLE host_keys")
        con.execute("DELETE FROM schema_migrations WHERE version = 7")
        con.execute("UPDATE credentials SET host_key = ?", [line])
    again = Services(settings)  # a new process: migrations run when it opens the file
    found = again.host_key("Old")
    assert found is not None
    assert (found.host, found.port, found.host_key) == ("sftp.partner.example", 22, line)
    assert found.fingerprint is not None and found.fingerprint.startswith("SHA256:")
    assert all(c.host_key is None for c in again.credentials("Old"))
