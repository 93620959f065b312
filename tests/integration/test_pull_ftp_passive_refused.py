"""An FTP server that answers on its control port but whose passive port refuses the data
connection (a firewall before its passive range: a common partner set-up fault), against real
sockets. The run said "connection refused: is an FTP server listening on <the control port>?",
a port that had just answered the login, and the login was marked Error (a pull audit)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hostile import SocketServer

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.specs import FtpSpec, FtpTls


class ClosedPassiveServer(SocketServer):
    """Logs anyone in; every PASV names a port nothing listens on."""

    def _session(self, control: socket.socket) -> None:
        def say(reply: str) -> None:
            control.sendall(reply.encode() + b"\r\n")

        with control, control.makefile("rb") as lines:
            say("220 firewalled")
            for raw in lines:
                command = raw.decode().split(" ", 1)[0].strip().upper()
                if command == "USER":
                    say("331 password please")
                elif command == "PASS":
                    say("230 logged in")
                elif command == "FEAT":
                    say("211-Features\r\n SIZE\r\n211 End")
                elif command == "PASV":
                    closed = socket.create_server(("127.0.0.1", 0))
                    port = closed.getsockname()[1]
                    closed.close()  # nothing listens there: the firewall's refusal
                    say(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})")
                elif command in ("MLSD", "EPSV"):
                    say("500 unknown command")
                elif command == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 ok" if command == "CWD" else "200 ok")


@pytest.fixture
def firewalled() -> Iterator[ClosedPassiveServer]:
    server = ClosedPassiveServer()
    yield server
    server.close()


def test_a_refused_passive_port_is_named_and_the_login_stays_good(
    services: Services, firewalled: ClosedPassiveServer
) -> None:
    draft = Connection(
        "Firewalled", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host="127.0.0.1", port=firewalled.port, folder="/", pattern="Calls_*.csv",
        transfer=FtpSpec(tls=FtpTls.NONE),
    )  # fmt: skip
    connection, _ = services.create_connection(draft, CredentialInput("partner", "partner", "secret"))
    run = services.pull(connection.id)

    assert run.status is RunStatus.FAILED
    assert "the data connection was refused" in (run.reason or ""), run.reason
    assert "is an FTP server listening" not in (run.reason or "")
    assert [c.status for c in services.credentials(connection.id)] == ["Active"]
