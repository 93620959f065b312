"""What one partner login may take of our hosted SFTP and FTP(S) servers, with real paramiko
and ftplib clients on 127.0.0.1 against the real servers and `Gateway`.

* **Sessions per login** (CONNECTBATCH_MAX_SESSIONS_PER_LOGIN): one session too many for a
  login is refused at login saying why (SFTP: a banner with the failed login, then a
  disconnect; FTP: 421), logged once and never with the password, while another login still
  gets in; a session's place comes back when it ends, also when its client vanishes with a
  reset socket.
* **Bytes waiting per push folder** (CONNECTBATCH_PUSH_QUOTA_BYTES): an upload that would take
  the folder past its quota is refused with the protocol's error (SFTP failure naming the
  quota, FTP 552), its partial file removed and nothing loaded, with a line in the
  connection's history; once an ingest has taken the waiting file away, the same upload goes
  through.
* **Connections not logged in per address** (CONNECTBATCH_MAX_CONNECTIONS_PER_ADDRESS): idle
  connections from one address (partners behind one NAT address) never lock a partner out: a
  new connection takes the place of the address's oldest one that has not logged in, on FTP as
  on SFTP.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import logging
import socket
import struct
from collections.abc import Iterator
from dataclasses import replace

import paramiko
import pytest
from helpers import call_csv
from helpers.push import eventually, ftps, push_login

from connectbatch.models import Connection, Method, RunStatus
from connectbatch.services import Provisioned, Services
from connectbatch.settings import Settings
from connectbatch.transfer.push.budget import RateBudget
from connectbatch.transfer.push.ftp import HostedFtpServer
from connectbatch.transfer.push.ftp import server as ftp_server_module
from connectbatch.transfer.push.gateway import PUSH_OVER_QUOTA, Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

HOST = "127.0.0.1"
TIMEOUT = 20.0
TOO_MANY = "Too many sessions for this login: at most 2 at a time"


def reset(sock: socket.socket) -> None:
    """Drop a connection the way a crashed client or a broken network does: an RST, no
    goodbye of any protocol."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def waiting_files(services: Services, connection: Connection) -> list[str]:
    home = services.settings.home / "push" / str(connection.id)
    return sorted(p.name for p in home.iterdir()) if home.is_dir() else []


def over_quota_lines(services: Services, connection: Connection) -> list[str]:
    return [e.message for e in services.connection_events(connection.id) if e.kind == PUSH_OVER_QUOTA]


# -- SFTP ----------------------------------------------------------------------------------


@contextlib.contextmanager
def sftp_server(services: Services, **options: object) -> Iterator[tuple[Gateway, HostedSftpServer]]:
    gateway = Gateway(services)
    server = HostedSftpServer(gateway, HOST, 0, host_key_path(services.settings.home), **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield gateway, server
    finally:
        server.stop()
        gateway.close()


def ssh(server: HostedSftpServer, login: Provisioned) -> paramiko.Transport:
    """A logged-in SSH connection (raises when the login is refused)."""
    transport = paramiko.Transport(socket.create_connection((HOST, server.port), timeout=TIMEOUT))
    try:
        transport.connect(username=login.username, password=login.password)
    except BaseException:
        transport.close()
        raise
    return transport


def sftp_of(transport: paramiko.Transport) -> paramiko.SFTPClient:
    client = paramiko.SFTPClient.from_transport(transport)
    assert client is not None
    return client


def test_sftp_a_login_over_its_session_limit_is_refused_while_another_login_gets_in(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    _, acme = push_login(services, "Acme", Method.SFTP)
    _, other = push_login(services, "Other", Method.SFTP)
    caplog.set_level(logging.INFO)
    with sftp_server(services, max_sessions_per_login=2) as (_, server):
        held = [ssh(server, acme), ssh(server, acme)]
        try:
            assert all(sftp_of(t).listdir("/") == [] for t in held)
            refused = paramiko.Transport(socket.create_connection((HOST, server.port), timeout=TIMEOUT))
            try:
                with pytest.raises(paramiko.SSHException):
                    refused.connect(username=acme.username, password=acme.password)
                banner = refused.get_banner() or b""
                assert TOO_MANY in banner.decode()  # what OpenSSH's client prints
                assert not refused.is_authenticated()
            finally:
                refused.close()

            with contextlib.closing(ssh(server, other)) as elsewhere:  # other logins: unaffected
                assert sftp_of(elsewhere).listdir("/") == []

            held.pop().close()  # a session that ends gives its place back
            eventually(lambda: server.login_sessions.held(acme.username) == 1, "the place given back")
            with contextlib.closing(ssh(server, acme)) as again:
                assert sftp_of(again).listdir("/") == []
        finally:
            for transport in held:
                transport.close()

    said = [r.getMessage() for r in caplog.records if "refused a session of login" in r.getMessage()]
    assert len(said) == 1 and repr(acme.username) in said[0], said
    assert not any(acme.password in r.getMessage() for r in caplog.records)


def test_sftp_a_session_whose_client_vanishes_gives_its_place_back(services: Services) -> None:
    _, acme = push_login(services, "Acme", Method.SFTP)
    with sftp_server(services, max_sessions_per_login=1) as (_, server):
        sock = socket.create_connection((HOST, server.port), timeout=TIMEOUT)
        first = paramiko.Transport(sock)
        first.connect(username=acme.username, password=acme.password)
        try:
            sftp_of(first).putfo(io.BytesIO(b"half an upload"), "calls.csv.part")
            with pytest.raises(paramiko.SSHException):  # the login's one session is taken
                ssh(server, acme)
            reset(sock)  # the client is gone without a word
        finally:
            first.close()
        eventually(lambda: server.login_sessions.held(acme.username) == 0, "the place given back")
        with contextlib.closing(ssh(server, acme)) as again:
            assert sftp_of(again).listdir("/") == ["calls.csv.part"]


def test_sftp_an_upload_past_the_quota_is_refused_removed_and_recorded(settings: Settings) -> None:
    waiting, refused = call_csv(30, prefix="w"), call_csv(30, prefix="r")
    quota = len(waiting) + len(refused) // 2  # room for one of them, not both
    services = Services(replace(settings, push_quota_bytes=quota))
    connection, acme = push_login(services, "Acme", Method.SFTP)
    with sftp_server(services) as (gateway, server), contextlib.closing(ssh(server, acme)) as transport:
        sftp = sftp_of(transport)
        sftp.putfo(io.BytesIO(waiting), "calls_1.csv.part")  # still in flight: it waits
        quota_exceeded = pytest.raises(OSError, match=f"quota exceeded: .* at most {quota} bytes")
        with quota_exceeded, sftp.open("calls_2.csv", "w") as remote:
            remote.write(refused)
        assert sftp.listdir("/") == ["calls_1.csv.part"]  # the partial file is gone
        gateway.wait(TIMEOUT)
        assert services.runs("Acme") == []  # nothing loaded
        [line] = over_quota_lines(services, connection)
        assert line.startswith("calls_2.csv: upload refused: ") and f"quota of {quota} bytes" in line

        sftp.rename("calls_1.csv.part", "calls_1.csv")  # complete: ingested, and gone
        gateway.wait(TIMEOUT)
        assert sftp.listdir("/") == []
        sftp.putfo(io.BytesIO(refused), "calls_2.csv")  # now there is room
        gateway.wait(TIMEOUT)
    runs = services.runs("Acme")
    assert sorted(r.rows_accepted for r in runs) == [30, 30]
    assert all(r.status is RunStatus.COMPLETED for r in runs)
    assert waiting_files(services, connection) == []


# -- FTP(S) --------------------------------------------------------------------------------


@contextlib.contextmanager
def ftp_server(services: Services, **options: object) -> Iterator[tuple[Gateway, HostedFtpServer]]:
    gateway = Gateway(services)
    server = HostedFtpServer(gateway, HOST, 0, failed_login_delay=0.1, **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield gateway, server
    finally:
        server.stop()
        gateway.close()


def test_ftp_a_login_over_its_session_limit_gets_421_while_another_login_gets_in(
    services: Services, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The FTP log's rate budget is the process's: a fresh one, so earlier tests' lines count not.
    monkeypatch.setattr(ftp_server_module._RATE_LIMIT, "budget", RateBudget())
    _, acme = push_login(services, "Acme", Method.FTP)
    _, other = push_login(services, "Other", Method.FTP)
    caplog.set_level(logging.DEBUG, logger="connectbatch.transfer.push.ftp")
    with ftp_server(services, max_sessions_per_login=2) as (_, server):
        held = [ftps(server, acme), ftps(server, acme)]
        try:
            assert all(ftp.nlst() == [] for ftp in held)
            with pytest.raises(ftplib.error_temp, match=f"^421 {TOO_MANY}"):
                ftps(server, acme)
            with contextlib.closing(ftps(server, other)) as elsewhere:  # other logins: unaffected
                assert elsewhere.pwd() == "/"

            held.pop().quit()  # a session that ends gives its place back
            eventually(lambda: server.login_sessions.held(acme.username) == 1, "the place given back")
            with contextlib.closing(ftps(server, acme)) as again:
                assert again.pwd() == "/"
        finally:
            for ftp in held:
                ftp.close()

    said = [r.getMessage() for r in caplog.records if "refused a session of login" in r.getMessage()]
    assert len(said) == 1 and repr(acme.username) in said[0], said
    assert not any(acme.password in r.getMessage() for r in caplog.records)


def test_ftp_a_session_whose_client_vanishes_gives_its_place_back(services: Services) -> None:
    _, acme = push_login(services, "Acme", Method.FTP)
    with ftp_server(services, max_sessions_per_login=1) as (_, server):
        first = ftps(server, acme)
        with pytest.raises(ftplib.error_temp, match=r"^421 Too many sessions for this login"):
            ftps(server, acme)
        assert first.sock is not None and first.file is not None
        first.file.close()  # (the socket closes only once ftplib's reader of it is closed)
        reset(first.sock)  # the client is gone without QUIT
        eventually(lambda: server.login_sessions.held(acme.username) == 0, "the place given back")
        with contextlib.closing(ftps(server, acme)) as again:
            assert again.pwd() == "/"


def test_ftp_an_upload_past_the_quota_gets_552_is_removed_and_recorded(settings: Settings) -> None:
    waiting, refused = call_csv(30, prefix="w"), call_csv(30, prefix="r")
    quota = len(waiting) + len(refused) // 2  # room for one of them, not both
    services = Services(replace(settings, push_quota_bytes=quota))
    connection, acme = push_login(services, "Acme", Method.FTP)
    with ftp_server(services) as (gateway, server), contextlib.closing(ftps(server, acme)) as ftp:
        assert ftp.storbinary("STOR calls_1.csv.part", io.BytesIO(waiting)).startswith("226")  # waits
        with pytest.raises(ftplib.error_perm, match=f"^552 Upload aborted: quota exceeded: .* {quota} bytes"):
            try:
                ftp.storbinary("STOR calls_2.csv", io.BytesIO(refused))
            except OSError:  # cut off while still sending: the 552 is on its way
                ftp.voidresp()
        assert ftp.nlst() == ["calls_1.csv.part"]  # the session goes on; the partial file is gone
        gateway.wait(TIMEOUT)
        assert services.runs("Acme") == []  # nothing loaded
        [line] = over_quota_lines(services, connection)
        assert line.startswith("calls_2.csv: upload refused: ") and f"quota of {quota} bytes" in line

        ftp.rename("calls_1.csv.part", "calls_1.csv")  # complete: ingested, and gone
        gateway.wait(TIMEOUT)
        assert ftp.nlst() == []
        assert ftp.storbinary("STOR calls_2.csv", io.BytesIO(refused)).startswith("226")  # room now
        gateway.wait(TIMEOUT)
    runs = services.runs("Acme")
    assert sorted(r.rows_accepted for r in runs) == [30, 30]
    assert all(r.status is RunStatus.COMPLETED for r in runs)
    assert waiting_files(services, connection) == []


def test_ftp_idle_connections_from_one_address_make_room_for_a_partner_logging_in(
    services: Services,
) -> None:
    _, acme = push_login(services, "Acme", Method.FTP)
    with ftp_server(services, max_connections_per_address=3, preauth_timeout=120) as (_, server):
        idle = [socket.create_connection((HOST, server.port), timeout=TIMEOUT) for _ in range(3)]
        try:
            assert all(sock.recv(200).startswith(b"220") for sock in idle)  # all greeted
            with contextlib.closing(ftps(server, acme)) as ftp:  # one more: the oldest makes room
                assert ftp.pwd() == "/"
            said = b""
            while chunk := idle[0].recv(200):  # ... told why, then closed
                said += chunk
            assert said.startswith(b"421 Closed: too many connections from your address")
            idle[1].setblocking(False)
            with pytest.raises(BlockingIOError):  # the others are still there
                idle[1].recv(200)
        finally:
            for sock in idle:
                sock.close()
