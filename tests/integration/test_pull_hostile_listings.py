"""A partner's server that never ends a folder listing, against real sockets: a small hostile
FTP server (raw sockets) streaming LIST lines (or the lines of a FEAT reply), and a paramiko
SFTP server streaming READDIR batches.

Neither protocol says how long a listing is, and a pull reads the whole listing before it
chooses anything. Without a bound such a server grew the pull's memory until its deadline
(two hours by default): a million LIST lines cost about 400 MB, so one partner's server could
take the process down, every other partner's pulls and the scheduler with it. The listing now
stops at `limits.MAX_LISTED_ENTRIES`, the run fails saying which folder and what to do, and
the scheduler's thread is free again at once. A multi-line FTP reply (`211-`...) that does
not end is cut the same way, at `reading.MAX_REPLY_LINES`.

The servers here stop by themselves at twice the bound, so that the test machine survives a
pull without the bound (which then ends Completed, and the test fails on that)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paramiko
import pytest
from hostile import ScriptedSftpServer, SocketServer, pull_within
from paramiko.sftp import CMD_NAME, SFTP_EOF
from paramiko.sftp_handle import SFTPHandle
from paramiko.sftp_si import SFTPServerInterface

from connectbatch.models import Connection, Direction, Method, Methodology, Run, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.pull.ftp.reading import MAX_REPLY_LINES
from connectbatch.transfer.pull.limits import MAX_LISTED_ENTRIES
from connectbatch.transfer.specs import FtpSpec, FtpTls, SftpSpec, TransferSpec

ENDLESS = 2 * MAX_LISTED_ENTRIES  # "without end", as far as any client can tell
USER, PASSWORD = "partner", "partner-secret"


def listing_line(k: int) -> bytes:
    return b"-rw-r--r--    1 1000     1000          123 Jun 18 17:28 old_file_%07d.txt" % k


class EndlessListingFtpServer(SocketServer):
    """An FTP server (one session at a time is enough) whose LIST never ends."""

    def __init__(self, endless_feat: bool = False) -> None:
        self.lines_sent = 0
        self.endless_feat = endless_feat
        super().__init__()

    def _session(self, control: socket.socket) -> None:
        data: socket.socket | None = None

        def say(reply: str) -> None:
            control.sendall(reply.encode() + b"\r\n")

        with control, control.makefile("rb") as lines:
            say("220 hostile")
            for raw in lines:
                command = raw.decode("latin-1").strip().split(" ")[0].upper()
                if command == "USER":
                    say("331 password please")
                elif command == "PASS":
                    say("230 logged in")
                elif command == "FEAT" and self.endless_feat:
                    self._stream_feat(control)
                elif command == "FEAT":
                    say("211-Features\r\n SIZE\r\n MDTM\r\n211 End")  # no MLSD: LIST it is
                elif command == "PASV":
                    data = socket.create_server(("127.0.0.1", 0))
                    port = data.getsockname()[1]
                    say(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})")
                elif command == "LIST" and data is not None:
                    say("150 here it comes")
                    self._stream(data)
                    say("226 done")
                elif command == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("200 ok")

    def _stream(self, listener: socket.socket) -> None:
        connection, _ = listener.accept()
        listener.close()
        block = 1000
        with connection:
            try:
                for start in range(0, ENDLESS, block):
                    connection.sendall(
                        b"".join(listing_line(k) + b"\r\n" for k in range(start, start + block))
                    )
                    self.lines_sent = start + block
            except OSError:  # the client hung up: what a bounded pull does
                pass

    def _stream_feat(self, control: socket.socket) -> None:
        control.sendall(b"211-Features\r\n")
        try:
            for start in range(0, ENDLESS, 1000):
                control.sendall(b"".join(b" X-FEATURE-%07d\r\n" % k for k in range(start, start + 1000)))
                self.lines_sent = start + 1000
            control.sendall(b"211 End\r\n")
        except OSError:  # the client hung up
            pass


class _Endless(SFTPServerInterface):
    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes]:
        return []  # the entries come from EndlessReaddir

    def stat(self, path: str) -> paramiko.SFTPAttributes:
        attributes = paramiko.SFTPAttributes()
        attributes.st_mode = 0o40755
        return attributes

    lstat = stat


class EndlessReaddir(paramiko.SFTPServer):
    """paramiko's SFTP server, answering every READDIR with another 1,000 names."""

    sent = 0

    def _read_folder(self, request_number: int, folder: SFTPHandle) -> None:
        if EndlessReaddir.sent >= ENDLESS:
            self._send_status(request_number, SFTP_EOF)
            return
        message = paramiko.Message()
        message.add_int(request_number)
        message.add_int(1000)
        for k in range(EndlessReaddir.sent, EndlessReaddir.sent + 1000):
            attributes = paramiko.SFTPAttributes()
            attributes.st_mode, attributes.st_size, attributes.st_mtime = 0o100644, 123, 1_700_000_000
            name = b"old_file_%07d.txt" % k
            message.add_string(name)
            message.add_string(name)
            attributes._pack(message)
        EndlessReaddir.sent += 1000
        self._send_packet(CMD_NAME, message)


@pytest.fixture
def ftp_server() -> Iterator[EndlessListingFtpServer]:
    server = EndlessListingFtpServer()
    yield server
    server.close()


@pytest.fixture
def sftp_server() -> Iterator[ScriptedSftpServer]:
    EndlessReaddir.sent = 0
    server = ScriptedSftpServer(EndlessReaddir, _Endless, USER, PASSWORD)
    yield server
    server.close()


def connect(services: Services, method: Method, port: int, spec: TransferSpec) -> Connection:
    draft = Connection(
        "Endless listing", "call_conversions", Direction.INBOUND, method, Methodology.PULL,
        host="127.0.0.1", port=port, folder="/outbox", pattern="Calls_*.csv", transfer=spec,
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", USER, PASSWORD))
    return created


def check_cut(run: Run, where: str) -> None:
    assert run.status is RunStatus.FAILED
    reason = run.reason or ""
    assert where in reason and "folder /outbox" in reason, reason
    assert f"more than {MAX_LISTED_ENTRIES:,} entries" in reason and "move old files" in reason


def test_an_ftp_listing_without_end_fails_the_run_at_the_bound(
    services: Services, ftp_server: EndlessListingFtpServer
) -> None:
    connection = connect(services, Method.FTP, ftp_server.port, FtpSpec(tls=FtpTls.NONE))

    run = pull_within(services, connection, 120)

    check_cut(run, f"FTP 127.0.0.1:{ftp_server.port}")
    assert ftp_server.lines_sent < ENDLESS  # we hung up; the server did not run out


def test_an_ftp_reply_without_end_fails_the_run(services: Services) -> None:
    server = EndlessListingFtpServer(endless_feat=True)
    connection = connect(services, Method.FTP, server.port, FtpSpec(tls=FtpTls.NONE))
    try:
        run = pull_within(services, connection, 120)
    finally:
        server.close()

    assert run.status is RunStatus.FAILED
    assert f"FTP 127.0.0.1:{server.port}: FEAT failed" in (run.reason or "")
    assert f"211 reply of more than {MAX_REPLY_LINES:,} lines" in (run.reason or "")
    assert server.lines_sent < ENDLESS


def test_an_sftp_listing_without_end_fails_the_run_at_the_bound(
    services: Services, sftp_server: ScriptedSftpServer
) -> None:
    connection = connect(services, Method.SFTP, sftp_server.port, SftpSpec())

    run = pull_within(services, connection, 180)

    check_cut(run, f"SFTP 127.0.0.1:{sftp_server.port}")
    assert EndlessReaddir.sent < ENDLESS
