"""What the tests of our hosted push servers share: a push connection with the login we
provision for it, a logged-in FTPS session, and waiting for something a server does on its own."""

from __future__ import annotations

import ftplib
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Provisioned, Services

if TYPE_CHECKING:
    from connectbatch.transfer.push.ftp import HostedFtpServer

TIMEOUT = 20.0


def push_login(services: Services, name: str, method: Method) -> tuple[Connection, Provisioned]:
    """A call-conversions push connection over `method`, and its provisioned login."""
    connection, login = services.create_connection(
        Connection(
            name=name,
            data_type="call_conversions",
            direction=Direction.INBOUND,
            method=method,
            methodology=Methodology.PUSH,
        )
    )
    assert login is not None
    return connection, login


def eventually(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Wait for something the server does on its own, after a client left or an upload ended
    (no timing asserted: the deadline only keeps a broken server from hanging the suite)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def tls_context(server: HostedFtpServer) -> ssl.SSLContext:
    """A client context that trusts the server's own certificate."""
    assert server.tls_cert is not None
    return ssl.create_default_context(cafile=str(server.tls_cert))


def ftps(
    server: HostedFtpServer,
    login: Provisioned,
    source: str | None = None,
    client: type[ftplib.FTP_TLS] = ftplib.FTP_TLS,
) -> ftplib.FTP_TLS:
    """A logged-in FTPS session with protected data, from `source` (a loopback address) if
    given; raises the server's reply when the login is refused."""
    ftp = client(context=tls_context(server))
    ftp.connect("127.0.0.1", server.port, timeout=TIMEOUT, source_address=(source, 0) if source else None)
    try:
        ftp.login(login.username, login.password)
        ftp.prot_p()
    except BaseException:
        ftp.close()
        raise
    return ftp


def openssh_options(key: Path | None = None) -> list[str]:
    """OpenSSH client options that read no known_hosts, agent or ~/.ssh keys (only what the
    test gives), logging in with `key`, else with the password (one prompt)."""
    options = [
        "-F", "/dev/null", "-oStrictHostKeyChecking=no", "-oUserKnownHostsFile=/dev/null",
        "-oGlobalKnownHostsFile=/dev/null", "-oLogLevel=ERROR", "-oConnectTimeout=20",
        "-oIdentitiesOnly=yes", "-oIdentityAgent=none",
    ]  # fmt: skip
    if key is not None:
        return [*options, "-oBatchMode=yes", "-oPreferredAuthentications=publickey", "-i", str(key)]
    return [*options, "-oBatchMode=no", "-oPreferredAuthentications=password", "-oNumberOfPasswordPrompts=1"]
