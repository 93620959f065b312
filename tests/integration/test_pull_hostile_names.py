"""Names no file of the listed folder can have, listed by a partner's server, against real
sockets: a paramiko SFTP server and a small FTP server (raw sockets) that list `../x.csv`,
`/etc/x.csv` and a name with a NUL in it beside an ordinary file.

The connection's pattern `*.csv` matched them (`*` takes `/` too), so the pull fetched files
outside the connection's folder and, with "delete after success", deleted them there: on a
server shared by several of the vendor's customers, another customer's files. A name with a
NUL is opened by a server written in C as the name before the NUL. Such names are now left
out of the listing, as folders are; the ordinary file beside them is taken."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paramiko
import pytest
from helpers import call_csv
from hostile import ScriptedSftpServer, SocketServer
from paramiko.sftp import CMD_NAME, SFTP_EOF
from paramiko.sftp_handle import SFTPHandle
from paramiko.sftp_si import SFTPServerInterface

from connectbatch.models import AfterSuccess, Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.specs import FtpSpec, FtpTls, SftpSpec, TransferSpec

USER, PASSWORD = "partner", "partner-secret"
HOSTILE = ["../Calls_up.csv", "/etc/Calls_abs.csv", "sub/../../Calls_deep.csv", "Calls_nul\x00.csv"]
NAMES = [*HOSTILE, "Calls_ok.csv"]
MTIME = 1_700_000_000  # Nov 2023: old enough for any minimum age


class Requests:
    """The paths a hostile server was asked to open or delete, whichever protocol."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.deleted: list[str] = []

    def outside(self) -> list[str]:
        return [p for p in self.opened + self.deleted if not p.startswith("/outbox/") or p.count("/") != 2]


# --- SFTP: paramiko's server with a folder listing of our choosing -----------------------------


class _File(SFTPHandle):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def stat(self) -> paramiko.SFTPAttributes:
        return _attributes(0o100644, len(self.data))


def _attributes(mode: int, size: int = 0) -> paramiko.SFTPAttributes:
    attributes = paramiko.SFTPAttributes()
    attributes.st_mode, attributes.st_size, attributes.st_mtime = mode, size, MTIME
    return attributes


class _Files(SFTPServerInterface):
    requests = Requests()

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes]:
        return []  # `_Listing` sends the names, as bytes

    def stat(self, path: str) -> paramiko.SFTPAttributes:
        return _attributes(0o40755) if path == "/outbox" else _attributes(0o100644, len(call_csv(2)))

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> _File:
        _Files.requests.opened.append(path)
        return _File(call_csv(2, prefix=f"f{len(_Files.requests.opened)}"))

    def remove(self, path: str) -> int:
        _Files.requests.deleted.append(path)
        return paramiko.sftp.SFTP_OK


class _Listing(paramiko.SFTPServer):
    def _read_folder(self, request_number: int, folder: SFTPHandle) -> None:
        if getattr(folder, "listed", False):
            self._send_status(request_number, SFTP_EOF)
            return
        folder.listed = True  # type: ignore[attr-defined]
        message = paramiko.Message()
        message.add_int(request_number)
        message.add_int(len(NAMES))
        for name in NAMES:
            message.add_string(name.encode())
            message.add_string(name.encode())
            _attributes(0o100644, len(call_csv(2)))._pack(message)
        self._send_packet(CMD_NAME, message)


class HostileSftpServer(ScriptedSftpServer):
    def __init__(self) -> None:
        self.requests = _Files.requests = Requests()
        super().__init__(_Listing, _Files, USER, PASSWORD)


# --- FTP: LIST lines of our choosing, MLSD refused --------------------------------------------


class HostileFtpServer(SocketServer):
    def __init__(self) -> None:
        self.requests = Requests()
        self.size = len(call_csv(2))
        super().__init__()

    def _session(self, control: socket.socket) -> None:
        data: socket.socket | None = None

        def say(reply: str) -> None:
            control.sendall(reply.encode("utf-8", "surrogateescape") + b"\r\n")

        with control, control.makefile("rb") as lines:
            say("220 hostile")
            for raw in lines:
                command, _, argument = raw.decode("utf-8", "surrogateescape").rstrip("\r\n").partition(" ")
                command = command.upper()
                if command == "USER":
                    say("331 password please")
                elif command == "FEAT":
                    say("211-Features\r\n SIZE\r\n MDTM\r\n211 End")
                elif command == "PASV":
                    data = socket.create_server(("127.0.0.1", 0))
                    port = data.getsockname()[1]
                    say(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})")
                elif command in ("LIST", "RETR") and data is not None:
                    say("150 here it comes")
                    self._send(data, command, argument)
                    say("226 done")
                elif command == "SIZE":
                    say(f"213 {self.size}")
                elif command == "MDTM":
                    say("213 20231114221320")
                elif command == "DELE":
                    self.requests.deleted.append(argument)
                    say("250 deleted")
                elif command == "QUIT":
                    say("221 bye")
                    return
                elif command == "MLSD":
                    say("500 unknown command")
                else:
                    say("230 ok" if command == "PASS" else "200 ok")

    def _send(self, listener: socket.socket, command: str, argument: str) -> None:
        connection, _ = listener.accept()
        listener.close()
        with connection:
            if command == "LIST":
                for name in NAMES:
                    line = f"-rw-r--r--    1 1000     1000     {self.size:>8} Nov 14  2023 {name}\r\n"
                    connection.sendall(line.encode("utf-8", "surrogateescape"))
            else:
                self.requests.opened.append(argument)
                connection.sendall(call_csv(2, prefix=f"f{len(self.requests.opened)}"))


@pytest.fixture
def sftp_server() -> Iterator[HostileSftpServer]:
    server = HostileSftpServer()
    yield server
    server.close()


@pytest.fixture
def ftp_server() -> Iterator[HostileFtpServer]:
    server = HostileFtpServer()
    yield server
    server.close()


def pull_everything(services: Services, method: Method, port: int, spec: TransferSpec) -> Connection:
    draft = Connection(
        "Odd names", "call_conversions", Direction.INBOUND, method, Methodology.PULL, host="127.0.0.1",
        port=port, folder="/outbox", pattern="*.csv", transfer=spec, after_success=AfterSuccess.DELETE,
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", USER, PASSWORD))
    return created


def check_only_the_folders_file_is_taken(services: Services, requests: Requests) -> None:
    run = services.pull("Odd names")

    assert run.status is RunStatus.COMPLETED, run.reason
    assert [(f.name, f.state) for f in services.run_files(run.id)] == [("Calls_ok.csv", "loaded")]
    assert requests.outside() == []  # nothing outside /outbox opened, nor deleted
    assert requests.deleted == ["/outbox/Calls_ok.csv"]


def test_sftp_names_outside_the_folder_are_never_fetched_nor_deleted(
    services: Services, sftp_server: HostileSftpServer
) -> None:
    pull_everything(services, Method.SFTP, sftp_server.port, SftpSpec())
    check_only_the_folders_file_is_taken(services, sftp_server.requests)


def test_ftp_names_outside_the_folder_are_never_fetched_nor_deleted(
    services: Services, ftp_server: HostileFtpServer
) -> None:
    pull_everything(services, Method.FTP, ftp_server.port, FtpSpec(tls=FtpTls.NONE))
    check_only_the_folders_file_is_taken(services, ftp_server.requests)
