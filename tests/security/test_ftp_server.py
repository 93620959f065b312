"""Attacks and faults against the hosted FTP(S) push server, tried with real clients
(ftplib's FTP_TLS, raw sockets, curl) on 127.0.0.1.

* A client killed in the middle of an upload must not be loaded as a complete file, nor an
  upload whose data connection was reset while its client waits for the reply.
* Logins only over TLS (AUTH TLS + PROT P), with curl and ftplib; clear text refused.
* Idle sockets from one address cannot lock partners out; they are dropped before login.
* Repeated wrong passwords from one address are slowed down and then refused for a while.
* A login provisioned for another method (SFTP) does not work over FTP.
"""

from __future__ import annotations

import ftplib
import io
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import call_csv
from helpers.push import push_login

from connectbatch.models import Method, RunStatus
from connectbatch.services import Provisioned, Services
from connectbatch.transfer.push.ftp import HostedFtpServer, server_fingerprint, sweep_partials
from connectbatch.transfer.push.ftp.certificate import fingerprint, generated_paths
from connectbatch.transfer.push.gateway import Gateway

HOST = "127.0.0.1"
OTHER_HOST = "127.0.0.2"  # a second client address: Linux routes all of 127/8 to loopback
TIMEOUT = 20.0
SETTLE = 0.3


@pytest.fixture
def gateway(services: Services) -> Iterator[Gateway]:
    gw = Gateway(services)
    yield gw
    gw.close()


def start(gateway: Gateway, **options: Any) -> HostedFtpServer:
    options.setdefault("failed_login_delay", 0.1)
    server = HostedFtpServer(gateway, HOST, 0, upload_settle=SETTLE, **options)
    server.start()
    return server


@pytest.fixture
def server(gateway: Gateway) -> Iterator[HostedFtpServer]:
    srv = start(gateway)
    yield srv
    srv.stop()


def push_connection(services: Services, name: str, method: Method = Method.FTP) -> Provisioned:
    return push_login(services, name, method)[1]


def tls_client(
    server: HostedFtpServer, login: Provisioned | None = None, source: str = HOST
) -> ftplib.FTP_TLS:
    assert server.tls_cert is not None
    ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(server.tls_cert)))
    ftp.connect(HOST, server.port, timeout=TIMEOUT, source_address=(source, 0))
    if login is not None:
        ftp.login(login.username, login.password)
        ftp.prot_p()
    return ftp


def home_files(services: Services) -> list[str]:
    root = services.settings.home / "push"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


# -- a broken upload is never a file -------------------------------------------------------


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_an_upload_cut_off_mid_transfer_is_not_loaded(
    services: Services, gateway: Gateway, server: HostedFtpServer, reset: bool
) -> None:
    """The client dies mid-STOR: its data connection ends (a normal close, or a reset) and,
    a moment later, its control connection. Nothing may be loaded; the full re-send is."""
    login = push_connection(services, "Acme")
    data = call_csv(400, prefix="big")
    ftp = tls_client(server, login)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR big.csv")
    conn.sendall(data[: len(data) // 2])
    if reset:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()  # no TLS close_notify, no 226 awaited: the process is gone
    time.sleep(0.05)
    ftp.sock.shutdown(socket.SHUT_RDWR)  # ftplib's makefile would keep a plain close() from closing
    ftp.close()
    time.sleep(SETTLE + 0.5)
    gateway.wait(TIMEOUT)

    assert services.runs("Acme") == []
    assert services.count_actions("Acme") == 0

    with tls_client(server, login) as again:
        assert again.storbinary("STOR big.csv", io.BytesIO(data)).startswith("226")
        gateway.wait(TIMEOUT)
    runs = services.runs("Acme")
    assert [r.status for r in runs] == [RunStatus.COMPLETED], [r.reason for r in runs]
    assert runs[0].rows_accepted == 400
    assert services.count_actions("Acme") == 400


def test_a_data_connection_reset_while_the_client_stays_is_a_broken_upload(
    services: Services, gateway: Gateway, server: HostedFtpServer
) -> None:
    """The data connection is reset mid-STOR but the client stays and waits for the reply
    (what a TLS 1.3 client that never read the session tickets does at the end of every
    upload). A reset is not the end of the file: 426, nothing loaded, the full re-send is."""
    login = push_connection(services, "Acme")
    data = call_csv(400, prefix="reset")
    with tls_client(server, login) as ftp:
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("STOR calls.csv")
        conn.sendall(data[: len(data) // 2])
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
        with pytest.raises(ftplib.error_temp, match=r"^426 .*reset"):
            ftp.voidresp()
        time.sleep(SETTLE + 0.2)
        gateway.wait(TIMEOUT)
        assert services.runs("Acme") == []

        assert ftp.storbinary("STOR calls.csv", io.BytesIO(data)).startswith("226")
        gateway.wait(TIMEOUT)
    runs = services.runs("Acme")
    assert [(r.status, r.rows_accepted, r.rows_rejected) for r in runs] == [(RunStatus.COMPLETED, 400, 0)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (make test installs it)")
def test_curl_killed_mid_upload_is_not_loaded(
    services: Services, gateway: Gateway, server: HostedFtpServer, tmp_path: Path
) -> None:
    login = push_connection(services, "Acme")
    big = tmp_path / "big.csv"
    big.write_bytes(call_csv(6000, prefix="curl"))
    assert big.stat().st_size > 400_000
    url = f"ftp://{HOST}:{server.port}/big.csv"
    command = [
        "curl", "--silent", "--ssl-reqd", "--cacert", str(server.tls_cert),
        "--user", f"{login.username}:{login.password}", "--limit-rate", "100k", "-T", str(big), url,
    ]  # fmt: skip
    curl = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        assert curl.poll() is None, "curl finished before it could be killed"
        curl.send_signal(signal.SIGKILL)
    finally:
        curl.wait(TIMEOUT)
    time.sleep(SETTLE + 0.7)
    gateway.wait(TIMEOUT)
    assert services.runs("Acme") == []
    assert services.count_actions("Acme") == 0

    subprocess.run([*command[:-5], "-T", str(big), url], check=True, timeout=60)  # no rate limit
    gateway.wait(TIMEOUT)
    runs = services.runs("Acme")
    assert [r.status for r in runs] == [RunStatus.COMPLETED], [r.reason for r in runs]
    assert runs[0].rows_accepted == 6000


def test_partial_uploads_are_swept_after_the_grace_period(services: Services, gateway: Gateway) -> None:
    home = services.settings.home / "push" / "7"
    home.mkdir(parents=True)
    old, fresh = home / "old.csv", home / "fresh.csv.part"
    old.write_bytes(b"half a file")
    fresh.write_bytes(b"still uploading")
    hours_ago = time.time() - 25 * 3600
    os.utime(old, (hours_ago, hours_ago))

    server = start(gateway, partial_upload_grace_hours=24)  # swept at start
    server.stop()
    assert not old.exists() and fresh.exists()
    assert sweep_partials(services.settings.home / "push", 0.0, now=time.time() + 1) == 1
    assert not fresh.exists()


# -- TLS -----------------------------------------------------------------------------------


def test_the_generated_certificate_is_private_and_its_fingerprint_is_known(
    services: Services, server: HostedFtpServer
) -> None:
    cert, key = generated_paths(services.settings.home)
    assert server.tls_cert == cert and cert.is_file()
    assert key.stat().st_mode & 0o777 == 0o600
    expected = fingerprint(cert)
    assert len(expected.split(":")) == 32
    assert server.fingerprint == expected == server_fingerprint(services.settings)
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as raw:
        raw.recv(1024)
        raw.sendall(b"AUTH TLS\r\n")
        assert raw.recv(1024).startswith(b"234")
        context = ssl.create_default_context(cafile=str(cert))
        with context.wrap_socket(raw, server_hostname=HOST) as tls:
            der = tls.getpeercert(binary_form=True)
    import hashlib

    assert hashlib.sha256(der).digest().hex(":").upper() == expected  # what a client pins


def test_clear_text_logins_and_data_are_refused(services: Services, server: HostedFtpServer) -> None:
    login = push_connection(services, "Acme")
    plain = ftplib.FTP()
    plain.connect(HOST, server.port, timeout=TIMEOUT)
    with pytest.raises(ftplib.error_perm, match=r"^530 TLS required: use AUTH TLS"):
        plain.login(login.username, login.password)
    plain.close()

    with tls_client(server) as ftp:
        ftp.login(login.username, login.password)
        ftp.prot_p()  # PBSZ + PROT P
        # back to clear-text data is refused at once (it was accepted, then every transfer 550)
        with pytest.raises(ftplib.error_perm, match=r"^534 PROT C refused"):
            ftp.prot_c()
    assert services.runs("Acme") == []


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (make test installs it)")
def test_curl_uploads_over_explicit_ftps_and_not_in_clear_text(
    services: Services, gateway: Gateway, server: HostedFtpServer, tmp_path: Path
) -> None:
    login = push_connection(services, "Acme")
    upload = tmp_path / "calls.csv"
    upload.write_bytes(call_csv(12, prefix="curl"))
    url = f"ftp://{HOST}:{server.port}/calls.csv"
    user = f"{login.username}:{login.password}"

    refused = subprocess.run(["curl", "--silent", "--user", user, "-T", str(upload), url], timeout=30)
    assert refused.returncode != 0  # clear text: 530 at USER
    assert services.runs("Acme") == []

    subprocess.run(
        ["curl", "--silent", "--show-error", "--ssl-reqd", "--cacert", str(server.tls_cert),
         "--user", user, "-T", str(upload), url],
        check=True, timeout=30,
    )  # fmt: skip
    gateway.wait(TIMEOUT)
    runs = services.runs("Acme")
    assert [r.status for r in runs] == [RunStatus.COMPLETED]
    assert runs[0].rows_accepted == 12


# -- floods and guessing -------------------------------------------------------------------


def test_idle_sockets_from_one_address_do_not_lock_partners_out(
    services: Services, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """300 idle sockets from one address (more than the server's whole table): each new one
    displaces that address's oldest that has not logged in, so the address never holds more
    than its 8 and a partner there (behind the same NAT) logs in at once, as on SFTP."""
    login = push_connection(services, "Acme")
    server = start(gateway, max_connections=256, max_connections_per_address=8, preauth_timeout=4.0)
    flood: list[socket.socket] = []
    caplog.set_level(logging.INFO)
    try:
        for _ in range(300):
            flood.append(socket.create_connection((HOST, server.port), timeout=TIMEOUT))
        told = []
        for sock in flood[:-8]:  # all but the last 8: greeted, then told why and closed
            said = b""
            while chunk := sock.recv(400):
                said += chunk
            told.append(said)
        assert all(t.startswith(b"220") for t in told)
        assert all(b"421 Closed: too many connections from your address" in t for t in told)
        assert all(sock.recv(200).startswith(b"220") for sock in flood[-8:])  # the 8 stay

        with tls_client(server, login) as ftp:  # the flooding address itself: at once
            assert ftp.storbinary("STOR calls.csv", io.BytesIO(call_csv(5))).startswith("226")
        with tls_client(server, login, source=OTHER_HOST) as ftp:  # a partner elsewhere: at once
            assert ftp.pwd() == "/"
    finally:
        for sock in flood:
            sock.close()
        server.stop()
    gateway.wait(TIMEOUT)
    assert [r.status for r in services.runs("Acme")] == [RunStatus.COMPLETED]
    noisy = [r for r in caplog.records if r.name.startswith(("pyftpdlib", "connectbatch.transfer.push.ftp"))]
    assert len(noisy) < 60, f"{len(noisy)} log records for one flood"
    assert not any(r.exc_info for r in noisy)


def test_repeated_wrong_passwords_are_slowed_down_then_refused(services: Services, gateway: Gateway) -> None:
    login = push_connection(services, "Acme")
    server = start(gateway, failed_login_delay=0.1, lockout_after=4, lockout_seconds=2.0)
    try:
        delays = []
        for _ in range(4):
            with tls_client(server) as ftp:
                started = time.monotonic()
                with pytest.raises(ftplib.error_perm, match=r"^530 Login incorrect"):
                    ftp.login(login.username, "wrong-password-1")
                delays.append(time.monotonic() - started)
        assert delays[0] >= 0.1 and delays[2] >= 0.4 and delays[3] >= 0.8, delays  # doubling

        with pytest.raises(ftplib.error_temp, match=r"^421 Too many failed logins"):
            tls_client(server)  # locked out: even the right password would not be checked
        with tls_client(server, login, source=OTHER_HOST) as ftp:  # other addresses are not
            assert ftp.pwd() == "/"
        time.sleep(2.2)
        with tls_client(server, login) as ftp:  # the lockout ends
            assert ftp.pwd() == "/"
    finally:
        server.stop()


def test_an_sftp_login_is_refused_over_ftp(services: Services, server: HostedFtpServer) -> None:
    sftp_login = push_connection(services, "Acme SFTP", method=Method.SFTP)
    with tls_client(server) as ftp, pytest.raises(ftplib.error_perm) as refused:
        ftp.login(sftp_login.username, sftp_login.password)
    assert str(refused.value) == "530 Login incorrect."  # the same reply as a wrong password
    ftp_login = push_connection(services, "Acme FTP")
    with tls_client(server, ftp_login) as ftp:
        assert ftp.pwd() == "/"


def test_a_provisioned_ftp_login_names_the_certificate_a_client_will_see(
    services: Services, gateway: Gateway
) -> None:
    """Provisioned before the server ever started: the certificate is made then, and the
    fingerprint given to the partner is the one the server presents afterwards."""
    login = push_connection(services, "Pinned FTPS")
    assert login.certificate_fingerprint is not None and login.host_key_fingerprint is None
    server = start(gateway)
    try:
        assert server.fingerprint == login.certificate_fingerprint
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed (make test installs it)")
def test_lftp_uploads_over_ftps_pinned_to_our_certificate(
    services: Services, gateway: Gateway, server: HostedFtpServer, tmp_path: Path
) -> None:
    """lftp, as partners script it: TLS forced, our certificate trusted through its CA file,
    upload under a temporary name and rename (lftp's `put -E`-less default is a plain STOR)."""
    login = push_connection(services, "Lftp partner")
    upload = tmp_path / "calls.csv"
    upload.write_bytes(call_csv(9, prefix="lftp"))
    script = "; ".join(
        [
            "set ftp:ssl-force true",
            "set ftp:ssl-protect-data true",
            f"set ssl:ca-file {server.tls_cert}",
            "set ssl:check-hostname no",  # the self-signed certificate names 127.0.0.1 only by IP
            "set net:max-retries 1",
            f"open -u {login.username},{login.password} -p {server.port} {HOST}",
            f"put {upload} -o calls.csv",
            "bye",
        ]
    )
    done = subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    gateway.wait(TIMEOUT)
    runs = services.runs("Lftp partner")
    assert [(r.status, r.rows_accepted) for r in runs] == [(RunStatus.COMPLETED, 9)]


@pytest.mark.skipif(
    not (shutil.which("lftp") and shutil.which("curl")),
    reason="needs lftp and curl (make test installs them)",
)
def test_lftp_and_curl_upload_files_of_many_tls_records_whole_at_the_first_try(
    services: Services,
    gateway: Gateway,
    server: HostedFtpServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither lftp (GnuTLS) nor curl (OpenSSL) reads the data connection of an upload, so
    TLS 1.3 session tickets the server sends there stay unread and their close becomes a
    reset that loses the end of the file: each upload must arrive whole the first time."""
    login = push_connection(services, "Big files")
    files = []
    for n in range(4):
        path = tmp_path / f"calls_{n}.csv"
        path.write_bytes(call_csv(3000, prefix=f"big{n}"))  # ~350 KB: ~22 TLS records
        files.append(path)
    script = "; ".join(
        [
            "set ftp:ssl-force true",
            "set ftp:ssl-protect-data true",
            f"set ssl:ca-file {server.tls_cert}",
            "set ssl:check-hostname no",
            "set net:max-retries 1",  # a broken upload fails the command instead of resuming
            f"open -u {login.username},{login.password} -p {server.port} {HOST}",
            *(f"put {path} -o {path.name}" for path in files[:3]),
            "bye",
        ]
    )
    done = subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    subprocess.run(
        ["curl", "--silent", "--show-error", "--ssl-reqd", "--cacert", str(server.tls_cert),
         "--user", f"{login.username}:{login.password}", "-T", str(files[3]),
         f"ftp://{HOST}:{server.port}/{files[3].name}"],
        check=True, timeout=60,
    )  # fmt: skip
    gateway.wait(TIMEOUT)
    assert "426 Upload broken off" not in caplog.text  # not even once, then resumed
    runs = services.runs("Big files")
    outcomes = [(r.status, r.rows_accepted, r.rows_rejected) for r in runs]
    assert outcomes == [(RunStatus.COMPLETED, 3000, 0)] * 4
