"""Active-mode FTP data connections, against real sockets: whoever connects to the port we
listen on first is not the partner's server unless it comes from the server's address.

ftplib listens on every interface in active mode and took the first connection to arrive: a
third party that finds the port (here a "server" that connects from 127.0.0.2 before its own
connection from 127.0.0.1) handed us its listing, or its file, as the partner's. A data
connection is now taken only from the control connection's peer. A real server in active
mode (pyftpdlib: the vsftpd fixture allows passive mode only) still works."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator

import ftpd
import pytest
from helpers import call_csv
from hostile import SocketServer

from connectbatch.transfer.base import Endpoint
from connectbatch.transfer.pull.ftp import FtpTransport
from connectbatch.transfer.specs import FtpSpec, FtpTls

INTRUDER = "127.0.0.2"  # another address of this machine: the third party


def listing(name: str) -> bytes:
    return f"-rw-r--r--    1 1000     1000          123 Nov 14  2023 {name}\r\n".encode()


class IntrudedFtpServer(SocketServer):
    """An active-mode FTP server whose data connections an intruder reaches first."""

    def _session(self, control: socket.socket) -> None:
        port: tuple[str, int] | None = None

        def say(reply: str) -> None:
            control.sendall(reply.encode() + b"\r\n")

        with control, control.makefile("rb") as lines:
            say("220 hostile")
            for raw in lines:
                command, _, argument = raw.decode().rstrip("\r\n").partition(" ")
                command = command.upper()
                if command == "USER":
                    say("331 password please")
                elif command == "FEAT":
                    say("211-Features\r\n SIZE\r\n211 End")
                elif command == "PORT":
                    numbers = argument.split(",")
                    port = (".".join(numbers[:4]), int(numbers[4]) * 256 + int(numbers[5]))
                    say("200 PORT ok")
                elif command == "LIST" and port is not None:
                    say("150 here it comes")
                    self._deliver(port, INTRUDER, listing("Calls_forged.csv"))
                    self._deliver(port, "127.0.0.1", listing("Calls_real.csv"))
                    say("226 done")
                elif command == "MLSD":
                    say("500 unknown command")
                elif command == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("230 ok" if command == "PASS" else "200 ok")

    @staticmethod
    def _deliver(port: tuple[str, int], source: str, data: bytes) -> None:
        try:
            with socket.create_connection(port, timeout=5, source_address=(source, 0)) as conn:
                conn.sendall(data)
        except OSError:  # refused or reset: what a careful client does to an intruder
            pass


@pytest.fixture
def intruded() -> Iterator[IntrudedFtpServer]:
    server = IntrudedFtpServer()
    yield server
    server.close()


def active(port: int, user: str = "partner", password: str = "secret") -> FtpTransport:
    spec = FtpSpec(tls=FtpTls.NONE, passive=False)
    return FtpTransport(
        Endpoint(host="127.0.0.1", port=port, username=user, password=password, spec=spec, timeout=10)
    )


def test_an_active_data_connection_from_another_host_is_refused(intruded: IntrudedFtpServer) -> None:
    transport = active(intruded.port)
    try:
        names = [remote.name for remote in transport.list_files("/", "Calls_*.csv")]
    finally:
        transport.close()

    assert names == ["Calls_real.csv"]


def test_active_mode_still_works_with_a_real_server() -> None:
    with ftpd.pyftpdlib_server() as server:
        server.put("/Calls_1.csv", call_csv(3), dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        transport = active(server.port, server.username, server.password)
        try:
            [remote] = transport.list_files("/", "Calls_*.csv")
        finally:
            transport.close()

    assert remote.name == "Calls_1.csv" and remote.size == len(call_csv(3))
