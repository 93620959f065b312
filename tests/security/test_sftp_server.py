"""Our hosted SFTP server under attack and in the hands of real OpenSSH clients.

Each test is something that went wrong on main: a flood of idle sockets locked every partner
out and filled the log; an FTP login worked over SFTP; `scp` reported failure after a good
upload and `scp -O` failed without a word; partners could not log in with a key (so `sftp -b`
needed BatchMode off); the provisioned login named the wrong host and no host key to pin.
Everything runs on 127.0.0.1 with `sftp`, `scp`, `ssh-keyscan` and `ssh-keygen` from
openssh-client, bounded in sockets and time.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from helpers import call_csv
from helpers.ports import free_port
from helpers.push import openssh_options

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import InvalidInputError, Provisioned, Services
from connectbatch.settings import Settings
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path
from connectbatch.transfer.push.sftp.guard import FailedLogins

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("sftp", "scp", "ssh-keyscan", "ssh-keygen")),
    reason="needs openssh-client (make test-deps)",
)

INGEST_TIMEOUT = 60.0
CLIENT_TIMEOUT = 60.0


@dataclass
class Hosted:
    services: Services
    gateway: Gateway
    server: HostedSftpServer
    tmp: Path

    def connection(self, name: str, method: Method = Method.SFTP) -> tuple[Connection, Provisioned]:
        draft = Connection(
            name=name,
            data_type="call_conversions",
            direction=Direction.INBOUND,
            method=method,
            methodology=Methodology.PUSH,
        )
        connection, provisioned = self.services.create_connection(draft)
        assert provisioned is not None
        return connection, provisioned

    def completed_runs(self, connection: Connection) -> int:
        self.gateway.wait(INGEST_TIMEOUT)
        runs = self.services.runs(connection.name)
        return sum(1 for run in runs if run.status is RunStatus.COMPLETED)


def _start(tmp: Path, **server: object) -> Hosted:
    services = Services(Settings(home=tmp / "home", lock_timeout=10.0, sftp_port=0))
    gateway = Gateway(services, workers=1)
    hosted = HostedSftpServer(gateway, "127.0.0.1", 0, host_key_path(services.settings.home), **server)  # type: ignore[arg-type]
    return Hosted(services, gateway, hosted.start(), tmp)


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[Hosted]:
    engine = _start(tmp_path)
    try:
        yield engine
    finally:
        engine.server.stop()
        engine.gateway.close()


# --- real OpenSSH clients -------------------------------------------------------------------------


def _env(hosted: Hosted, password: str | None) -> dict[str, str]:
    """Password logins answer the prompt through SSH_ASKPASS (no sshpass on Debian by default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
    if password is not None:
        script = hosted.tmp / f"askpass-{abs(hash(password))}"
        script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{password}'\n")
        script.chmod(0o700)
        env.update(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    return env


def _sftp_batch(
    hosted: Hosted, login: Provisioned, commands: str, *, key: Path | None = None
) -> subprocess.CompletedProcess[str]:
    batch = hosted.tmp / "batch.txt"
    batch.write_text(commands)
    argv = ["sftp", *openssh_options(key), "-P", str(hosted.server.port), "-b", str(batch)]
    argv.append(f"{login.username}@127.0.0.1")
    password = None if key is not None else login.password
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        env=_env(hosted, password),
        stdin=subprocess.DEVNULL,
    )


def _scp(hosted: Hosted, login: Provisioned, source: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = ["scp", *openssh_options(), *extra, "-P", str(hosted.server.port), str(source)]
    argv.append(f"{login.username}@127.0.0.1:")
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        env=_env(hosted, login.password),
        stdin=subprocess.DEVNULL,
    )


def _csv_file(hosted: Hosted, name: str, prefix: str) -> Path:
    path = hosted.tmp / name
    path.write_bytes(call_csv(5, prefix=prefix))
    return path


# --- a flood of idle connections ----------------------------------------------------------------


def test_an_idle_socket_flood_neither_locks_partners_out_nor_floods_the_log(
    hosted: Hosted, caplog: pytest.LogCaptureFixture
) -> None:
    """130 idle sockets from the partner's own address (more than the whole session cap on
    main), held open while the partner logs in with `sftp -b`: the login works, the address
    holds at most its slots, and the whole episode logs a few dozen lines, no tracebacks."""
    connection, login = hosted.connection("Flood Acme")
    upload = _csv_file(hosted, "Conversions_flood.csv", "flood")
    caplog.set_level(logging.INFO, logger="connectbatch")
    flood: list[socket.socket] = []
    try:
        for _ in range(130):
            flood.append(socket.create_connection(("127.0.0.1", hosted.server.port), timeout=5))
        time.sleep(0.5)
        assert hosted.server.slots.count("127.0.0.1") <= 8
        result = _sftp_batch(hosted, login, f"put {upload}\n")
        assert result.returncode == 0, result.stderr
    finally:
        for sock in flood:
            sock.close()
    assert hosted.completed_runs(connection) == 1
    deadline = time.monotonic() + 10
    while hosted.server.sessions and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) <= 40, "\n".join(r.getMessage() for r in lines)
    assert not any(r.exc_info for r in lines)


def test_a_connection_that_does_not_log_in_in_time_is_closed(tmp_path: Path) -> None:
    engine = _start(tmp_path, preauth_timeout=1.0)
    try:
        with socket.create_connection(("127.0.0.1", engine.server.port), timeout=10) as idle:
            started = time.monotonic()
            received = b""
            while chunk := idle.recv(4096):  # our banner, then EOF when the timeout hits
                received += chunk
            assert received.startswith(b"SSH-2.0-")
            assert time.monotonic() - started < 5
    finally:
        engine.server.stop()
        engine.gateway.close()


def test_an_address_with_many_failed_logins_may_not_guess_any_more(tmp_path: Path) -> None:
    """Three wrong passwords close a connection; across connections, the address's failures
    add up, and past the limit even the right password is refused (guessing is pointless)."""
    engine = _start(tmp_path, failed_logins=FailedLogins(limit=4, window=60.0))
    try:
        _connection, login = engine.connection("Guessed Acme")
        for attempt in range(4):
            with pytest.raises(paramiko.AuthenticationException):
                _paramiko_login(engine, login.username, f"wrong-{attempt}")
        with pytest.raises(paramiko.AuthenticationException):
            _paramiko_login(engine, login.username, login.password)
    finally:
        engine.server.stop()
        engine.gateway.close()


def _paramiko_login(hosted: Hosted, username: str, password: str) -> None:
    transport = paramiko.Transport(("127.0.0.1", hosted.server.port))
    try:
        transport.connect(username=username, password=password)
    finally:
        transport.close()


# --- a login works over its own method only ---------------------------------------------------


def test_an_ftp_login_is_refused_over_sftp(hosted: Hosted) -> None:
    _connection, ftp_login = hosted.connection("FTP Acme", Method.FTP)
    with pytest.raises(paramiko.AuthenticationException):
        _paramiko_login(hosted, ftp_login.username, ftp_login.password)
    result = _sftp_batch(hosted, ftp_login, "ls\n")
    assert result.returncode != 0


def test_a_connection_that_only_opens_channels_is_told_it_is_out_of_room(hosted: Hosted) -> None:
    """A logged-in client that opened channel after channel (3,000 took the server from 13 to
    76 threads) gets 'resource shortage' past MAX_OPEN_CHANNELS; closing one makes room, and
    an SFTP upload on the same connection still works."""
    from connectbatch.transfer.push.sftp.login import MAX_OPEN_CHANNELS

    connection, login = hosted.connection("Channel Acme")
    transport = paramiko.Transport(("127.0.0.1", hosted.server.port))
    try:
        transport.connect(username=login.username, password=login.password)
        held = [transport.open_session(timeout=10) for _ in range(MAX_OPEN_CHANNELS)]
        with pytest.raises(paramiko.ChannelException) as refused:
            transport.open_session(timeout=10)
        assert refused.value.code == paramiko.OPEN_FAILED_RESOURCE_SHORTAGE
        held.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the server unlinks the channel once it has seen the close
            try:
                sftp = paramiko.SFTPClient.from_transport(transport)
                break
            except paramiko.ChannelException:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert sftp is not None
        sftp.putfo(io.BytesIO(call_csv(4, prefix="chan")), "/Conversions_chan.csv")
        sftp.close()
    finally:
        transport.close()
    assert hosted.completed_runs(connection) == 1


def test_unknown_request_types_are_answered_unsupported_without_a_traceback_each(
    hosted: Hosted, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by trying the server as an attacker: each 9-byte packet of an unknown type
    logged a traceback (~500 bytes), so any logged-in client could fill the disk. Now each is
    answered "operation unsupported", the session goes on, and nothing is logged for it."""
    from paramiko.sftp import CMD_STATUS, SFTP_OP_UNSUPPORTED

    connection, login = hosted.connection("Unknown requests")
    transport = paramiko.Transport(("127.0.0.1", hosted.server.port))
    try:
        transport.connect(username=login.username, password=login.password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        caplog.clear()  # the login's own INFO line is not what this is about
        with caplog.at_level(logging.INFO, logger="connectbatch.transfer.push.sftp"):
            for request_id in range(300):
                sftp._send_packet(255, paramiko.Message(request_id.to_bytes(4, "big")))
                kind, data = sftp._read_packet()
                assert kind == CMD_STATUS
                msg = paramiko.Message(data)
                assert (msg.get_int(), msg.get_int()) == (request_id, SFTP_OP_UNSUPPORTED)
            logged = [
                r for r in caplog.records
                if r.name.startswith("connectbatch.transfer.push.sftp") and r.levelno >= logging.WARNING
            ]  # fmt: skip
        assert not logged, [r.getMessage() for r in logged]
        sftp.putfo(io.BytesIO(call_csv(4, prefix="unk")), "/Conversions_unk.csv")
        sftp.close()
    finally:
        transport.close()
    assert hosted.completed_runs(connection) == 1


# --- scp --------------------------------------------------------------------------------------------


def test_scp_exits_0_after_an_upload_and_the_file_is_ingested(hosted: Hosted) -> None:
    connection, login = hosted.connection("Scp Acme")
    result = _scp(hosted, login, _csv_file(hosted, "Conversions_scp.csv", "scp"))
    assert result.returncode == 0, result.stderr
    assert hosted.completed_runs(connection) == 1


def test_legacy_scp_is_refused_with_a_clear_message(hosted: Hosted) -> None:
    connection, login = hosted.connection("Legacy Acme")
    result = _scp(hosted, login, _csv_file(hosted, "Conversions_legacy.csv", "legacy"), "-O")
    assert result.returncode != 0
    assert "legacy scp protocol is not supported: use scp without -O (SFTP) or sftp" in result.stderr
    assert hosted.completed_runs(connection) == 0


# --- partner public keys ------------------------------------------------------------------------


def _keypair(folder: Path, kind: str, name: str) -> Path:
    key = folder / name
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", f"{name}@partner", "-f", str(key)],
        check=True,
        timeout=60,
    )
    return key


def test_a_partner_key_logs_in_with_batch_mode_and_other_keys_do_not(hosted: Hosted) -> None:
    connection, login = hosted.connection("Key Acme")
    credential = hosted.services.credentials(connection.name)[0]
    key = _keypair(hosted.tmp, "ed25519", "partner_ed25519")
    stranger = _keypair(hosted.tmp, "ed25519", "stranger_ed25519")
    fingerprint = hosted.services.add_public_key(credential.id, key.with_suffix(".pub").read_text())
    assert fingerprint.startswith("SHA256:")

    upload = _csv_file(hosted, "Conversions_key.csv", "key")
    refused = _sftp_batch(hosted, login, f"put {upload}\n", key=stranger)
    assert refused.returncode != 0
    result = _sftp_batch(hosted, login, f"put {upload}\n", key=key)
    assert result.returncode == 0, result.stderr
    assert hosted.completed_runs(connection) == 1


def test_public_keys_are_checked_when_added(hosted: Hosted) -> None:
    connection, _login = hosted.connection("Checked Keys")
    credential = hosted.services.credentials(connection.name)[0]
    rsa = _keypair(hosted.tmp, "rsa", "partner_rsa").with_suffix(".pub").read_text()
    ecdsa = _keypair(hosted.tmp, "ecdsa", "partner_ecdsa").with_suffix(".pub").read_text()
    assert hosted.services.add_public_key(credential.id, rsa).startswith("SHA256:")
    assert hosted.services.add_public_key(credential.id, ecdsa).startswith("SHA256:")
    assert hosted.services.add_public_key(credential.id, rsa)  # twice: kept once
    for bad in ("", "ssh-ed25519 not-base64!", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519 " + rsa.split()[1]):
        with pytest.raises(InvalidInputError):
            hosted.services.add_public_key(credential.id, bad)
    _ftp, _ = hosted.connection("FTP Keys", Method.FTP)
    ftp_credential = hosted.services.credentials("FTP Keys")[0]
    with pytest.raises(InvalidInputError):
        hosted.services.add_public_key(ftp_credential.id, rsa)


# --- the provisioned login names the right host, port and host key ---------------------------


def _cli(home: Path, port: int, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
    env.update(
        CONNECTBATCH_HOME=str(home),
        CONNECTBATCH_SFTP_PORT=str(port),
        CONNECTBATCH_PUBLIC_HOST="sftp.partners.example",
        CONNECTBATCH_EXPECTATIONS_DIR=os.environ.get(
            "CONNECTBATCH_EXPECTATIONS_DIR", str(Path(__file__).resolve().parents[2] / "expectations")
        ),
    )
    code = "import sys; from connectbatch.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, env=env
    )


def test_the_provisioned_login_shows_public_host_port_and_the_host_key_to_pin(tmp_path: Path) -> None:
    """Provisioned by the CLI before any server ran; then the server starts on that data
    directory, and the fingerprint printed is the one `ssh-keyscan | ssh-keygen -lf -` sees;
    `credentials add-key` lets a key log in."""
    home = tmp_path / "home"
    port = free_port()  # a free port for the configured SFTP port
    assert _cli(home, port, "partner", "add", "Acme", "--type", "brand").returncode == 0
    add = ["connection", "add", "--name", "Printed Acme", "--type", "call_conversions"]
    add += ["--direction", "inbound", "--method", "sftp", "--methodology", "push", "--partner", "Acme"]
    created = _cli(home, port, *add, "--json")
    assert created.returncode == 0, created.stderr
    provisioned = json.loads(created.stdout)["provisioned"]
    assert (provisioned["host"], provisioned["port"]) == ("sftp.partners.example", port)
    printed = _cli(home, port, *add[:3], "Printed Acme 2", *add[4:])
    assert printed.returncode == 0, printed.stderr
    assert "sftp.partners.example" in printed.stdout and str(port) in printed.stdout
    assert provisioned["host_key_fingerprint"] in printed.stdout

    services = Services(Settings(home=home, lock_timeout=10.0, sftp_port=port))
    gateway = Gateway(services, workers=1)
    server = HostedSftpServer(gateway, "127.0.0.1", port, host_key_path(home)).start()
    try:
        scanned = subprocess.run(
            ["ssh-keyscan", "-p", str(port), "-T", "10", "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        listed = subprocess.run(
            ["ssh-keygen", "-lf", "-"], input=scanned.stdout, capture_output=True, text=True, timeout=30
        )
        assert listed.returncode == 0, scanned.stderr + listed.stderr
        assert listed.stdout.split()[1] == provisioned["host_key_fingerprint"]

        credential_id = services.credentials("Printed Acme")[0].id
        key = _keypair(tmp_path, "ed25519", "cli_ed25519")
        added = _cli(
            home, port, "credentials", "add-key", str(credential_id), "--public-key-file", f"{key}.pub"
        )
        assert added.returncode == 0, added.stderr
        hosted = Hosted(services, gateway, server, tmp_path)
        login = Provisioned("127.0.0.1", port, provisioned["username"], "")
        result = _sftp_batch(hosted, login, "ls\n", key=key)
        assert result.returncode == 0, result.stderr
    finally:
        server.stop()
        gateway.close()


def test_a_preauth_timeout_of_0_is_no_limit_not_no_time(tmp_path: Path) -> None:
    """CONNECTBATCH_PREAUTH_TIMEOUT=0 means no pre-login limit (as on the FTP server, and as
    the settings accept it); the SFTP server read it as zero seconds: paramiko's banner and
    handshake waits of 0 and a deadline at the connect refused every partner's login."""
    engine = _start(tmp_path, preauth_timeout=0.0)
    try:
        _connection, login = engine.connection("Unhurried Acme")
        _paramiko_login(engine, login.username, login.password)  # no exception: logged in
        with socket.create_connection(("127.0.0.1", engine.server.port), timeout=10) as idle:
            assert idle.recv(64).startswith(b"SSH-2.0-")
            idle.settimeout(1.5)
            with pytest.raises(TimeoutError):  # still open: no limit
                idle.recv(64)
    finally:
        engine.server.stop()
        engine.gateway.close()


HOLDER = r"""
import sys, time
import duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
"""


def test_a_login_the_busy_database_could_not_check_is_told_to_try_later_and_counts_as_no_failure(
    tmp_path: Path,
) -> None:
    services = Services(Settings(home=tmp_path / "home", lock_timeout=0.3, sftp_port=0))
    gateway = Gateway(services, workers=1)
    server = HostedSftpServer(
        gateway, "127.0.0.1", 0, host_key_path(services.settings.home), failed_logins=FailedLogins(limit=2)
    ).start()
    engine = Hosted(services, gateway, server, tmp_path)
    try:
        _connection, login = engine.connection("Busy Acme")
        services.db.release()
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(services.settings.database)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
            for _ in range(3):  # another process holds the database past the lock timeout
                transport = paramiko.Transport(("127.0.0.1", server.port))
                try:
                    with pytest.raises(paramiko.AuthenticationException):
                        transport.connect(username=login.username, password=login.password)
                    banner = (transport.get_banner() or b"").decode()
                    assert "try again later" in banner  # was: a plain "Authentication failed"
                finally:
                    transport.close()
        finally:
            holder.communicate("\n", timeout=30)
        assert not server.failed_logins.blocked("127.0.0.1")  # was: the address refused unchecked
        _paramiko_login(engine, login.username, login.password)  # the right password works again
    finally:
        server.stop()
        gateway.close()
