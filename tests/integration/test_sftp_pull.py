"""SFTP pulls against a real OpenSSH sshd on 127.0.0.1 (see sshd.py): listing with the seed's
wildcard and minimum age, byte-exact downloads (200 MB included), every login method, host-key
pinning, archive/delete after success, and errors a person can read."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from helpers.ports import free_port

from connectbatch.errors import RemoteFileChangedError, TransportError
from connectbatch.transfer.base import Endpoint, RemoteFile, old_enough, open_transport
from connectbatch.transfer.pull.sftp import HostKeyChangedError, SftpTransport, load_private_key
from connectbatch.transfer.specs import SftpSpec

if TYPE_CHECKING:
    from sshd import Sshd

# The sshd fixtures (tests/integration/sshd.py). Imported only this way, so that pytest loads
# the module once, as a plugin.
pytest_plugins = ["sshd"]

NOW = dt.datetime.now(dt.UTC)
LEAKY_WORDS = ("Traceback", "Errno", "Exception", "paramiko", "<class", "SSHException")


def endpoint(server: Sshd, **fields: object) -> Endpoint:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "username": server.user,
        "timeout": 10.0,
    }
    values.update(fields)
    if "private_key" not in values and "password" not in values:
        values["password"] = server.password
    return Endpoint(**values)  # type: ignore[arg-type]


@pytest.fixture
def sftp(sshd_server: Sshd) -> Iterator[SftpTransport]:
    transport = SftpTransport(endpoint(sshd_server))
    try:
        yield transport
    finally:
        transport.close()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def assert_readable(exc: BaseException, *secrets: str) -> str:
    """The message is for a person: no exception class names or errno codes, no secrets."""
    text = str(exc)
    assert text.strip()
    for word in LEAKY_WORDS:
        assert word not in text, text
    for secret in secrets:
        assert secret not in text, text
    return text


# --- listing ------------------------------------------------------------------------------------


def test_list_applies_the_wildcard_and_never_lists_in_flight_files(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport
) -> None:
    taken = ["Conversions_2024_01.csv", "Conversions_2025_feb.csv", "Conversions_2029_.csv"]
    ignored = [
        "Conversions_2024.csv",  # no "_" after the year
        "Conversions_20245_01.csv",  # "?" is exactly one character
        "conversions_2024_01.csv",  # case-sensitive
        "Conversions_2024_01.csv.bak",
        "Conversions_2024_02.csv.part",
        "Conversions_2024_03.csv.tmp",
        "Conversions_2024_04.csv.filepart",
    ]
    for index, name in enumerate(taken + ignored):
        sshd_server.put(sftp_folder, name, f"row {index}\n".encode(), NOW - dt.timedelta(hours=1))
    (sftp_folder / "Conversions_2024_dir.csv").mkdir()  # a folder is not a file
    # a link to a file is that file (tests/integration/test_untidy_pulls.py); to a folder, nothing
    (sftp_folder / "Conversions_2024_link.csv").symlink_to(sftp_folder / taken[0])
    (sftp_folder / "Conversions_2024_dirlink.csv").symlink_to(sftp_folder / "Conversions_2024_dir.csv")
    sshd_server.put(sftp_folder / "sub", "Conversions_2024_05.csv", b"x")  # not recursive

    listed = sftp.list_files(str(sftp_folder), "Conversions_202?_*.csv")

    assert sorted(remote.name for remote in listed) == sorted([*taken, "Conversions_2024_link.csv"])
    for remote in listed:
        assert remote.path == f"{sftp_folder}/{remote.name}"
        shown = taken[0] if remote.name == "Conversions_2024_link.csv" else remote.name
        assert remote.size == len(f"row {taken.index(shown)}\n")
        assert remote.mtime is not None and remote.mtime.tzinfo is not None
        assert remote.mtime.utcoffset() == dt.timedelta(0)
    # In-flight names are never listed, even by a pattern that matches everything.
    everything = {remote.name for remote in sftp.list_files(str(sftp_folder), "*")}
    assert not {name for name in everything if name.endswith((".part", ".tmp", ".filepart"))}
    assert "Conversions_2024_01.csv.bak" in everything


def test_list_reports_exact_mtimes_in_utc_oldest_first(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport
) -> None:
    stamp = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    sshd_server.put(sftp_folder, "b.csv", b"b", stamp)
    sshd_server.put(sftp_folder, "a.csv", b"a", stamp + dt.timedelta(days=1))
    listed = sftp.list_files(str(sftp_folder), "*.csv")
    assert [(remote.name, remote.mtime) for remote in listed] == [
        ("b.csv", stamp),
        ("a.csv", stamp + dt.timedelta(days=1)),
    ]


def test_minimum_age_leaves_young_files_for_the_next_run(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport
) -> None:
    sshd_server.put(sftp_folder, "old.csv", b"1", NOW - dt.timedelta(hours=2))
    sshd_server.put(sftp_folder, "young.csv", b"2", NOW - dt.timedelta(seconds=10))
    listed = sftp.list_files(str(sftp_folder), "*.csv")
    ready = [remote.name for remote in listed if old_enough(remote, 3600, NOW)]
    assert ready == ["old.csv"]
    assert [remote.name for remote in listed if old_enough(remote, 0, NOW)] == [
        "old.csv",
        "young.csv",
    ]


def test_a_missing_folder_is_a_clear_error(sftp: SftpTransport) -> None:
    with pytest.raises(TransportError) as caught:
        sftp.list_files("/home/cbtest/no-such-folder", "*.csv")
    text = assert_readable(caught.value)
    assert "/home/cbtest/no-such-folder" in text and "does not exist on host 127.0.0.1" in text


def test_the_folder_must_be_absolute(sftp: SftpTransport) -> None:
    with pytest.raises(TransportError, match="absolute path"):
        sftp.list_files("incoming", "*.csv")


# --- fetching -----------------------------------------------------------------------------------


def test_fetch_is_byte_exact_and_keeps_the_mtime(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport, tmp_path: Path
) -> None:
    stamp = NOW - dt.timedelta(hours=3)
    source = sshd_server.put_large(sftp_folder, "Conversions_2024_01.csv", 3_000_017, stamp)
    source_sha = sha256(source)
    sshd_server.put(sftp_folder, "empty.csv", b"", stamp)
    listed = {remote.name: remote for remote in sftp.list_files(str(sftp_folder), "*.csv")}

    target = tmp_path / "download.csv"
    sftp.fetch(listed["Conversions_2024_01.csv"], target)
    assert sha256(target) == source_sha
    assert int(target.stat().st_mtime) == int(stamp.timestamp())

    sftp.fetch(listed["empty.csv"], tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_bytes() == b""


@pytest.mark.parametrize("request_size", [1024 * 1024, 4096])
def test_fetch_with_other_request_sizes(
    sshd_server: Sshd, sftp_folder: Path, tmp_path: Path, request_size: int
) -> None:
    """1 MiB requests: OpenSSH answers at most 255 KiB, so every reply is short and the rest
    must be asked for again, without holes or duplicates. 4 KiB: the most requests in flight
    (as with a server that only takes small reads)."""
    source = sshd_server.put_large(sftp_folder, "big.csv", 5 * 1024 * 1024 + 123)
    spec = SftpSpec(request_size=request_size)
    with SftpTransport(endpoint(sshd_server, spec=spec)) as transport:
        (remote,) = transport.list_files(str(sftp_folder), "big.csv")
        transport.fetch(remote, tmp_path / "big.csv")
        assert sha256(tmp_path / "big.csv") == sha256(source)
        # The session is still usable afterwards (no stray replies left on the channel).
        assert [r.name for r in transport.list_files(str(sftp_folder), "*.csv")] == ["big.csv"]


def test_fetch_refuses_a_file_that_changed_since_it_was_listed(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport, tmp_path: Path
) -> None:
    sshd_server.put(sftp_folder, "growing.csv", b"a,b\n1,2\n")
    (remote,) = sftp.list_files(str(sftp_folder), "*.csv")
    with (sftp_folder / "growing.csv").open("ab") as handle:
        handle.write(b"3,4\n")
    with pytest.raises(TransportError, match="changed while being fetched") as caught:
        sftp.fetch(remote, tmp_path / "growing.csv")
    assert_readable(caught.value)
    assert not (tmp_path / "growing.csv").exists()  # no partial file left behind
    (again,) = sftp.list_files(str(sftp_folder), "*.csv")  # the session still works
    sftp.fetch(again, tmp_path / "growing.csv")
    assert (tmp_path / "growing.csv").read_bytes() == b"a,b\n1,2\n3,4\n"


def test_fetch_refuses_a_file_written_over_at_the_same_size(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport, tmp_path: Path
) -> None:
    """A partner's export rewritten in place (same size) while we read it gave one copy of
    two versions, loaded as a good file: the size alone did not tell."""
    sshd_server.put(sftp_folder, "daily.csv", b"a,b\n1,2\n", mtime=1_700_000_000)
    (remote,) = sftp.list_files(str(sftp_folder), "*.csv")
    sshd_server.put(sftp_folder, "daily.csv", b"a,b\n3,4\n", mtime=1_700_000_060)  # same size
    with pytest.raises(TransportError, match="changed while being fetched") as caught:
        sftp.fetch(remote, tmp_path / "daily.csv")
    assert_readable(caught.value)
    assert not (tmp_path / "daily.csv").exists()


@pytest.mark.parametrize("action", ["delete", "archive"])
def test_a_file_replaced_after_it_was_taken_is_neither_deleted_nor_archived(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport, tmp_path: Path, action: str
) -> None:
    """After-success deleted or archived by path: a version the partner uploaded after our
    fetch, never read, was removed without a trace."""
    sshd_server.put(sftp_folder, "daily.csv", b"a,b\n1,2\n", mtime=1_700_000_000)
    (remote,) = sftp.list_files(str(sftp_folder), "*.csv")
    sftp.fetch(remote, tmp_path / "daily.csv")
    sshd_server.put(sftp_folder, "daily.csv", b"a,b\n1,2\n5,6\n", mtime=1_700_000_600)
    with pytest.raises(RemoteFileChangedError, match="changed after it was taken"):
        sftp.after_success(remote, action, "done")
    assert (sftp_folder / "daily.csv").read_bytes() == b"a,b\n1,2\n5,6\n"
    assert not (sftp_folder / "done").exists()


def test_fetch_of_a_vanished_file_is_a_clear_error(
    sftp_folder: Path, sftp: SftpTransport, tmp_path: Path
) -> None:
    gone = RemoteFile("gone.csv", f"{sftp_folder}/gone.csv", 10, None, ref=f"{sftp_folder}/gone.csv")
    with pytest.raises(TransportError, match="does not exist") as caught:
        sftp.fetch(gone, tmp_path / "gone.csv")
    assert_readable(caught.value)


def test_server_side_refusals_are_clear_and_the_session_survives(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport, tmp_path: Path
) -> None:
    sshd_server.put(sftp_folder, "a.csv", b"a")
    secret = sshd_server.put(sftp_folder, "secret.csv", b"s")
    os.chown(secret, 0, 0)
    secret.chmod(0)
    folder_named_csv = sftp_folder / "folder.csv"
    folder_named_csv.mkdir()
    listed = {remote.name: remote for remote in sftp.list_files(str(sftp_folder), "*.csv")}
    assert sorted(listed) == ["a.csv", "secret.csv"]

    with pytest.raises(TransportError, match="is a file, not a folder"):
        sftp.list_files(f"{sftp_folder}/a.csv", "*")
    with pytest.raises(TransportError, match="permission denied listing folder /root"):
        sftp.list_files("/root", "*")
    with pytest.raises(TransportError, match="permission denied") as caught:
        sftp.fetch(listed["secret.csv"], tmp_path / "secret.csv")
    assert_readable(caught.value)
    # A read that fails after the transfer started (the server opens a folder, then cannot
    # read it): the pipelined reader must leave a usable session behind.
    as_file = RemoteFile("folder.csv", str(folder_named_csv), None, None, ref=str(folder_named_csv))
    with pytest.raises(TransportError, match=r"reading .*folder\.csv failed") as caught:
        sftp.fetch(as_file, tmp_path / "folder.csv")
    assert_readable(caught.value)
    assert not (tmp_path / "folder.csv").exists()
    with pytest.raises(TransportError, match="permission denied"):
        sftp.after_success(listed["a.csv"], "archive", "/root/archive")
    sftp.fetch(listed["a.csv"], tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_bytes() == b"a"


@pytest.mark.slow
def test_a_200_mb_file_arrives_intact(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport, tmp_path: Path
) -> None:
    source = sshd_server.put_large(sftp_folder, "Conversions_2024_big.csv", 200 * 1024 * 1024)
    source_sha = sha256(source)
    (remote,) = sftp.list_files(str(sftp_folder), "Conversions_202?_*.csv")
    assert remote.size == 200 * 1024 * 1024
    target = tmp_path / "big.csv"
    started = time.perf_counter()
    sftp.fetch(remote, target)
    elapsed = time.perf_counter() - started
    assert target.stat().st_size == remote.size
    assert sha256(target) == source_sha
    # Loopback runs at 150-300 MB/s; 30 s only catches a stall (e.g. Nagle, no pipelining).
    assert elapsed < 30, f"200 MB took {elapsed:.1f} s"
    source.unlink()


# --- logging in ---------------------------------------------------------------------------------


def test_password_login_through_the_registry(sshd_server: Sshd, sftp_folder: Path) -> None:
    sshd_server.put(sftp_folder, "a.csv", b"1")
    transport = open_transport("sftp", endpoint(sshd_server, password=sshd_server.password))
    try:
        assert isinstance(transport, SftpTransport)
        assert [r.name for r in transport.list_files(str(sftp_folder), "*.csv")] == ["a.csv"]
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("kind", "passphrase", "fmt"),
    [
        ("ed25519", None, "openssh"),
        ("ecdsa", None, "openssh"),
        ("rsa", None, "openssh"),
        ("rsa", None, "pem"),
        ("ecdsa", None, "pem"),
        ("ed25519", "correct horse battery", "openssh"),
        ("rsa", "correct horse battery", "pem"),
    ],
)
def test_key_login(sshd_server: Sshd, sftp_folder: Path, kind: str, passphrase: str | None, fmt: str) -> None:
    key = sshd_server.client_key(kind, passphrase, fmt)
    sshd_server.put(sftp_folder, "a.csv", b"1")
    fields = {"private_key": key.private_text, "key_passphrase": passphrase}
    with SftpTransport(endpoint(sshd_server, **fields)) as transport:
        assert [r.name for r in transport.list_files(str(sftp_folder), "*.csv")] == ["a.csv"]


def test_a_key_pasted_on_one_line_still_works(sshd_server: Sshd, sftp_folder: Path) -> None:
    key = sshd_server.client_key("ed25519")
    squashed = " ".join(key.private_text.split("\n"))
    with SftpTransport(endpoint(sshd_server, private_key=squashed)) as transport:
        assert transport.list_files(str(sftp_folder), "*") == []


def test_pkcs8_keys_are_converted(sshd_server: Sshd, sftp_folder: Path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    sshd_server.authorize(public.decode())
    with SftpTransport(endpoint(sshd_server, private_key=pkcs8)) as transport:
        assert transport.list_files(str(sftp_folder), "*") == []


def test_wrong_or_missing_passphrase_is_a_clear_error(sshd_server: Sshd) -> None:
    for fmt in ("openssh", "pem"):
        kind = "ed25519" if fmt == "openssh" else "rsa"
        key = sshd_server.client_key(kind, "correct horse battery", fmt)
        with pytest.raises(TransportError) as caught:
            SftpTransport(endpoint(sshd_server, private_key=key.private_text, key_passphrase="Tr0ub4dor&3"))
        text = assert_readable(caught.value, "Tr0ub4dor&3", "correct horse battery")
        assert "passphrase is wrong" in text
        with pytest.raises(TransportError, match="protected by a passphrase"):
            SftpTransport(endpoint(sshd_server, private_key=key.private_text))


def test_unusable_key_text_is_a_clear_error(sshd_server: Sshd) -> None:
    cases = {
        "not a key at all": "not in a recognised format",
        "PuTTY-User-Key-File-3: ssh-ed25519\n...": "PuTTY",
        "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----": "DSA",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nbm9wZQ==\n-----END OPENSSH PRIVATE KEY-----": ("damaged"),
    }
    for text, expected in cases.items():
        with pytest.raises(TransportError, match=expected) as caught:
            load_private_key(text)
        assert_readable(caught.value)


def test_a_key_the_server_does_not_know_is_rejected_clearly(sshd_server: Sshd) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    text = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(TransportError, match="rejected the private key") as caught:
        SftpTransport(endpoint(sshd_server, private_key=text))
    assert_readable(caught.value)


def test_wrong_password_is_a_clear_error_without_the_password(sshd_server: Sshd) -> None:
    secret = "hunter2-not-it"
    with pytest.raises(TransportError) as caught:
        SftpTransport(endpoint(sshd_server, password=secret))
    text = assert_readable(caught.value, secret, sshd_server.password)
    assert f"127.0.0.1:{sshd_server.port}" in text
    assert "wrong user name or password" in text


def test_a_closed_port_is_a_clear_error(sshd_server: Sshd) -> None:
    port = free_port()
    with pytest.raises(TransportError) as caught:
        SftpTransport(endpoint(sshd_server, port=port, password="whatever-secret"))
    text = assert_readable(caught.value, "whatever-secret")
    assert f"127.0.0.1:{port}" in text and "connection refused: is an SFTP server listening" in text


def silent_server_error(sshd_server: Sshd, says: bytes) -> tuple[int, str]:
    """Connect to a server that accepts, sends `says` and then nothing (a firewall black hole,
    or a hung sshd): its port, and the error's readable text."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        connection, _ = listener.accept()
        accepted.append(connection)
        connection.sendall(says)

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        with pytest.raises(TransportError) as caught:
            SftpTransport(endpoint(sshd_server, port=port, timeout=1.0))
    finally:
        listener.close()
        for connection in accepted:
            connection.close()
    return port, assert_readable(caught.value)


def test_a_port_that_does_not_speak_ssh_times_out_clearly(sshd_server: Sshd) -> None:
    started = time.monotonic()
    port, text = silent_server_error(sshd_server, b"")
    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{port}" in text and "SSH" in text


def test_a_server_that_sends_its_banner_and_goes_silent_times_out_saying_so(sshd_server: Sshd) -> None:
    """paramiko ends a handshake that ran out of time as if the server had closed the
    connection: the run said "the server closed the connection" of a server still holding
    it open and silent."""
    _port, text = silent_server_error(sshd_server, b"SSH-2.0-OpenSSH_9.2\r\n")
    assert "no answer within" in text and "closed" not in text, text


# --- host keys ----------------------------------------------------------------------------------


def ssh_keygen_fingerprint(public_line: str, tmp_path: Path) -> str:
    path = tmp_path / "key.pub"
    path.write_text(public_line + "\n")
    output = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return output.split()[1]


def test_first_use_exposes_the_host_key_and_its_openssh_fingerprint(
    sshd_server: Sshd, sftp: SftpTransport, tmp_path: Path
) -> None:
    assert sftp.host_key == sshd_server.host_keys["ed25519"]  # paramiko's first choice
    assert sftp.host_key_fingerprint == ssh_keygen_fingerprint(sftp.host_key, tmp_path)
    assert sftp.host_key_fingerprint.startswith("SHA256:")


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_a_pinned_key_of_any_type_the_server_holds_is_accepted(
    sshd_server: Sshd, sftp_folder: Path, kind: str
) -> None:
    pinned = sshd_server.host_keys[kind]
    with SftpTransport(endpoint(sshd_server, host_key=pinned + " comment")) as transport:
        assert transport.host_key == pinned
        assert transport.list_files(str(sftp_folder), "*") == []


def test_a_changed_host_key_is_refused_before_logging_in(sshd_server: Sshd, tmp_path: Path) -> None:
    other = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    failures_before = sshd_server.log().count("Failed password")
    with pytest.raises(HostKeyChangedError) as caught:
        SftpTransport(endpoint(sshd_server, host_key=other, password="never-sent-9x"))
    error = caught.value
    assert isinstance(error, TransportError)
    text = assert_readable(error, "never-sent-9x")
    expected = ssh_keygen_fingerprint(other, tmp_path)
    presented = ssh_keygen_fingerprint(sshd_server.host_keys["ed25519"], tmp_path)
    assert expected in text and presented in text
    assert "accept" in text and f"127.0.0.1:{sshd_server.port}" in text
    assert error.expected_fingerprint == expected
    assert error.presented_fingerprint == presented
    assert error.presented_key == sshd_server.host_keys["ed25519"]
    time.sleep(0.2)  # let sshd write its log line for the dropped connection
    assert sshd_server.log().count("Failed password") == failures_before  # nothing was sent


def test_a_malformed_pinned_key_is_a_clear_error(sshd_server: Sshd) -> None:
    with pytest.raises(TransportError, match="not in the form"):
        SftpTransport(endpoint(sshd_server, host_key="AAAA-not-a-key"))
    with pytest.raises(TransportError, match="not valid base64"):
        SftpTransport(endpoint(sshd_server, host_key="ssh-ed25519 ###"))


# --- after success ------------------------------------------------------------------------------


def test_archive_moves_the_file_and_never_overwrites(
    sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport
) -> None:
    sshd_server.put(sftp_folder, "Conversions_2024_01.csv", b"first")
    (remote,) = sftp.list_files(str(sftp_folder), "*.csv")
    sftp.after_success(remote, "archive", "archive/2024")  # relative to the file's folder
    archive = sftp_folder / "archive" / "2024"
    assert (archive / "Conversions_2024_01.csv").read_bytes() == b"first"
    assert not (sftp_folder / "Conversions_2024_01.csv").exists()

    sshd_server.put(sftp_folder, "Conversions_2024_01.csv", b"second")
    (remote,) = sftp.list_files(str(sftp_folder), "*.csv")
    sftp.after_success(remote, "archive", str(archive))  # absolute works too
    names = sorted(path.name for path in archive.iterdir())
    assert len(names) == 2 and "Conversions_2024_01.csv" in names
    (stamped,) = (name for name in names if name != "Conversions_2024_01.csv")
    assert stamped.startswith("Conversions_2024_01_") and stamped.endswith("Z.csv")
    assert (archive / stamped).read_bytes() == b"second"
    assert (archive / "Conversions_2024_01.csv").read_bytes() == b"first"


def test_delete_and_leave(sshd_server: Sshd, sftp_folder: Path, sftp: SftpTransport) -> None:
    sshd_server.put(sftp_folder, "keep.csv", b"1")
    sshd_server.put(sftp_folder, "drop.csv", b"2")
    listed = {remote.name: remote for remote in sftp.list_files(str(sftp_folder), "*.csv")}
    sftp.after_success(listed["keep.csv"], "leave", None)
    sftp.after_success(listed["drop.csv"], "delete", None)
    sftp.after_success(listed["drop.csv"], "delete", None)  # already gone: nothing to do
    assert sorted(path.name for path in sftp_folder.iterdir()) == ["keep.csv"]
    with pytest.raises(TransportError, match="archive folder"):
        sftp.after_success(listed["keep.csv"], "archive", None)
    with pytest.raises(TransportError, match="unknown after-success action"):
        sftp.after_success(listed["keep.csv"], "shred", None)


def test_openssh_keys_that_need_no_padding_load() -> None:
    """paramiko's own reader drops such keys (empty comment, block a multiple of 8 bytes):
    a P-256 key whose secret has its top bit clear is one."""
    from cryptography.hazmat.primitives.asymmetric import ec

    while True:
        private = ec.generate_private_key(ec.SECP256R1())
        if private.private_numbers().private_value < 2**255:
            break
    text = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    key = load_private_key(text)
    assert f"{key.get_name()} {key.get_base64()}".encode() == public
