"""Credentials reuse (issue 11) against real servers on 127.0.0.1: a pull connection that
reuses another connection's login on the partner's server (a real OpenSSH sshd) pulls with
it, and keeps it when the other is deleted; two push connections sharing one provisioned
login on our hosted SFTP and FTP servers each get the uploads their folder and pattern
match, and a file both or neither match is recorded in their history, never ingested twice
and never dropped."""

from __future__ import annotations

import contextlib
import datetime as dt
import ftplib
import io
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
import pytest
from helpers import call_csv

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, InvalidInputError, Provisioned, Services
from connectbatch.settings import Settings
from connectbatch.transfer.push.ftp import HostedFtpServer
from connectbatch.transfer.push.gateway import PUSH_UNROUTED, Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path
from connectbatch.transfer.specs import SftpSpec

if TYPE_CHECKING:
    from sshd import Sshd

pytest_plugins = ["sshd"]

TIMEOUT = 60.0


# -- pull: one login on the partner's server, used by two connections ------------------------


def _pull(services: Services, server: Sshd, name: str, folder: Path, pattern: str) -> Connection:
    return Connection(
        name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=server.host, port=server.port, folder=str(folder), pattern=pattern, transfer=SftpSpec(),
    )  # fmt: skip


def test_a_pull_connection_reusing_a_remote_login_pulls_with_it(
    services: Services, sshd_server: Sshd, sftp_folder: Path
) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    sshd_server.put(sftp_folder, "Calls_a.csv", call_csv(3, prefix="a"), old)
    sshd_server.put(sftp_folder, "Leads_b.csv", call_csv(5, prefix="b"), old)
    first, _ = services.create_connection(
        _pull(services, sshd_server, "Calls pull", sftp_folder, "Calls_*.csv"),
        CredentialInput("partner login", sshd_server.user, sshd_server.password),
    )
    [login] = services.credentials(first.id)

    second, shown = services.create_connection(
        _pull(services, sshd_server, "Leads pull", sftp_folder, "Leads_*.csv"), reuse_credential=login.id
    )
    assert shown is None  # nothing secret is shown again
    [reused] = services.credentials(second.id)
    assert reused.id == login.id and reused.is_main and reused.used_by == ("Calls pull", "Leads pull")

    run = services.pull("Leads pull")
    assert run.status is RunStatus.COMPLETED, run.reason
    assert run.rows_accepted == 5
    assert services.pull("Calls pull").rows_accepted == 3

    # The other connection uses it: deleting the credential is refused, naming both...
    with pytest.raises(InvalidInputError) as refused:
        services.delete_credential(login.id)
    assert refused.value.field == "credential"
    assert "'Calls pull'" in str(refused.value) and "'Leads pull'" in str(refused.value)
    # ...and deleting the connection that made it leaves it to the one still using it.
    services.delete_connection("Calls pull")
    [kept] = services.credentials(second.id)
    assert kept.id == login.id and kept.used_by == ("Leads pull",) and kept.connection_id == second.id
    sshd_server.put(sftp_folder, "Leads_c.csv", call_csv(2, prefix="c"), old)
    again = services.pull("Leads pull")
    assert again.status is RunStatus.COMPLETED and again.rows_accepted == 2, again.reason
    services.delete_credential(login.id)  # its last user: allowed now
    assert services.credentials(second.id) == []


# -- push: one provisioned login, two connections, routed by folder and pattern -------------


def _push(services: Services, method: Method, name: str, **attrs: object) -> Connection:
    return Connection(
        name,
        "call_conversions",
        Direction.INBOUND,
        method,
        Methodology.PUSH,
        **attrs,  # type: ignore[arg-type]
    )


def _shared_pair(services: Services, method: Method) -> tuple[Connection, Connection, Provisioned]:
    """'Calls' takes calls_*.csv anywhere; 'Daily' takes *.csv in the folder daily/."""
    calls, login = services.create_connection(_push(services, method, "Calls", pattern="calls_*.csv"))
    assert login is not None
    [credential] = services.credentials(calls.id)
    daily, shown = services.create_connection(
        _push(services, method, "Daily", folder="daily", pattern="*.csv"), reuse_credential=credential.id
    )
    assert shown is None
    return calls, daily, login


def _unrouted(services: Services, connection: Connection) -> list[str]:
    return [e.message for e in services.connection_events(connection.id) if e.kind == PUSH_UNROUTED]


def _assert_routed(services: Services, calls: Connection, daily: Connection, home: Path) -> None:
    [calls_run] = services.runs(calls.id)
    [daily_run] = services.runs(daily.id)
    assert calls_run.status is RunStatus.COMPLETED and calls_run.rows_accepted == 4, calls_run.reason
    assert daily_run.status is RunStatus.COMPLETED and daily_run.rows_accepted == 6, daily_run.reason
    assert [f.name for f in services.run_files(calls_run.id)] == ["calls_1.csv"]
    assert [f.name for f in services.run_files(daily_run.id)] == ["report.csv"]
    # daily/calls_2.csv matches both: recorded for both, ingested by neither, still there.
    both = _unrouted(services, calls)
    assert both == _unrouted(services, daily) and len(both) == 2
    several = next(m for m in both if "daily/calls_2.csv" in m)
    assert "matches the folder and pattern of 2" in several and "'Calls'" in several and "'Daily'" in several
    assert (home / "daily" / "calls_2.csv").is_file()
    # notes.txt matches neither: recorded for every connection of the login, still there.
    assert any("notes.txt" in m and "no connection" in m for m in both)
    assert (home / "notes.txt").is_file()


@pytest.fixture
def sftp_server(services: Services) -> Iterator[tuple[Gateway, HostedSftpServer]]:
    gateway = Gateway(services)
    server = HostedSftpServer(gateway, "127.0.0.1", 0, host_key_path(services.settings.home)).start()
    try:
        yield gateway, server
    finally:
        server.stop()
        gateway.close()


@contextlib.contextmanager
def sftp_login(port: int, login: Provisioned) -> Iterator[paramiko.SFTPClient]:
    transport = paramiko.Transport((login.host, port))
    try:
        transport.connect(username=login.username, password=login.password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        with contextlib.closing(sftp):
            yield sftp
    finally:
        transport.close()


def test_two_sftp_push_connections_sharing_a_login_get_their_own_files(
    services: Services, settings: Settings, sftp_server: tuple[Gateway, HostedSftpServer]
) -> None:
    gateway, server = sftp_server
    calls, daily, login = _shared_pair(services, Method.SFTP)
    with sftp_login(server.port, login) as sftp:
        sftp.mkdir("daily")
        sftp.putfo(io.BytesIO(call_csv(4, prefix="c")), "calls_1.csv")
        sftp.putfo(io.BytesIO(call_csv(6, prefix="d")), "daily/report.csv")
        sftp.putfo(io.BytesIO(call_csv(3, prefix="x")), "daily/calls_2.csv")
        sftp.putfo(io.BytesIO(b"hello"), "notes.txt")
    gateway.wait(TIMEOUT)
    _assert_routed(services, calls, daily, settings.home / "push" / str(calls.id))


def test_two_ftp_push_connections_sharing_a_login_get_their_own_files(
    services: Services, settings: Settings
) -> None:
    gateway = Gateway(services)
    try:
        with HostedFtpServer(gateway, "127.0.0.1", 0, failed_login_delay=0.2) as server:
            calls, daily, login = _shared_pair(services, Method.FTP)
            assert server.tls_cert is not None
            ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(server.tls_cert)))
            ftp.connect("127.0.0.1", server.port, timeout=TIMEOUT)
            ftp.login(login.username, login.password)
            ftp.prot_p()
            with ftp:
                ftp.mkd("daily")
                for name, data in (
                    ("calls_1.csv", call_csv(4, prefix="c")),
                    ("daily/report.csv", call_csv(6, prefix="d")),
                    ("daily/calls_2.csv", call_csv(3, prefix="x")),
                    ("notes.txt", b"hello"),
                ):
                    ftp.storbinary(f"STOR {name}", io.BytesIO(data))
            gateway.wait(TIMEOUT)
            _assert_routed(services, calls, daily, settings.home / "push" / str(calls.id))
    finally:
        gateway.close()


def test_a_shared_login_is_refused_by_the_other_protocols_server(
    services: Services, sftp_server: tuple[Gateway, HostedSftpServer]
) -> None:
    """A shared FTP login stays an FTP login: the SFTP server refuses it as before."""
    _gateway, server = sftp_server
    _calls, _daily, login = _shared_pair(services, Method.FTP)
    with pytest.raises(paramiko.AuthenticationException), sftp_login(server.port, login):
        pass
