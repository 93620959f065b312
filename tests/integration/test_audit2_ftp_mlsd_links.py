"""A partner's export job that links its files into the FTP folder of a ProFTPD server (Debian's
1.3.8): the linked files are taken, as over SFTP and from servers without MLSD.

The bug: ProFTPD's MLSD lists a link as itself, `type=OS.unix=symlink` with the link's own size
(the length of the target's name), and the pull took only `type=file`: a partner whose job
links each day's file into the folder saw none of them taken, and no run said why. Its MLST of
a link even says `type=file` with that same small size, so a link must be sized and timed like
a LIST entry (SIZE and MDTM follow the link), before the download and after it. A link to a
folder or to nothing is still left out.

Installing vsftpd (the FTP server of the other tests) removes ProFTPD, both being Debian's
`ftp-server`, so the server here is scripted: it answers as ProFTPD 1.3.8 did in an audit on a
real one (its MLSD, MLST, SIZE and MDTM replies copied from that session).
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import call_csv
from hostile import SocketServer

from connectbatch.transfer.base import Endpoint
from connectbatch.transfer.pull.ftp import FtpTransport
from connectbatch.transfer.pull.ftp.listing import parse_mlsd_facts
from connectbatch.transfer.specs import FtpSpec, FtpTls

OLD = dt.datetime(2026, 11, 14, 8, 30, tzinfo=dt.UTC)


def test_an_mlsd_line_of_a_link_is_a_link_whatever_its_target_is_called() -> None:
    facts = {"type": "OS.unix=symlink", "size": "6", "modify": "20261114083000"}
    assert parse_mlsd_facts("Calls_1.csv", facts).kind == "link"  # type: ignore[union-attr]
    slink = {"type": "OS.unix=slink:/home/dir/Calls_1.csv", "modify": "20261114083000"}
    assert parse_mlsd_facts("Calls_1.csv", slink).kind == "link"  # type: ignore[union-attr]


# --- ProFTPD's answers, scripted (real sockets, ftplib as the client) ---------------------------

LINKED = call_csv(4, prefix="linked")
FACTS = "perm=adfrw;unique=FE00U211132;UNIX.group=1002;UNIX.groupname=cbftp;UNIX.owner=1002;"
MLSD_LINES = [
    "modify=20261114083000;perm=flcdmpe;type=cdir;unique=FE00U2;UNIX.mode=0755; .",
    f"modify=20261207074901;{FACTS}size=18;type=OS.unix=symlink;UNIX.mode=0777; Calls_1.csv",
    f"modify=20261207074901;{FACTS}size=13;type=OS.unix=symlink;UNIX.mode=0777; Calls_to_a_folder.csv",
    f"modify=20261114083000;{FACTS}size={len(LINKED)};type=file;UNIX.mode=0644; Calls_2.csv",
    "modify=20261114083000;perm=flcdmpe;type=dir;unique=FE00U3;UNIX.mode=0755; export",
]


class ProftpdLike(SocketServer):
    """An FTP server answering as ProFTPD 1.3.8 does for a folder holding a link to a file
    (`Calls_1.csv` -> export/Calls_1.csv), a link to a folder and a plain file."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        super().__init__()

    def _session(self, control: socket.socket) -> None:
        data: socket.socket | None = None

        def say(reply: str) -> None:
            control.sendall(reply.encode() + b"\r\n")

        with control, control.makefile("rb") as lines:
            say("220 ProFTPD Server (partner) [127.0.0.1]")
            for raw in lines:
                command, _, argument = raw.decode().rstrip("\r\n").partition(" ")
                command = command.upper()
                name = argument.rsplit("/", 1)[-1]
                if command == "USER":
                    say("331 Password required for partner")
                elif command == "FEAT":
                    say("211-Features:\r\n MDTM\r\n MLST modify*;perm*;size*;type*;\r\n SIZE\r\n211 End")
                elif command == "PASV":
                    data = socket.create_server(("127.0.0.1", 0))
                    port = data.getsockname()[1]
                    say(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255}).")
                elif command in ("MLSD", "RETR") and data is not None:
                    say("150 Opening BINARY mode data connection")
                    payload = "".join(line + "\r\n" for line in MLSD_LINES).encode()
                    self._send(data, payload if command == "MLSD" else LINKED)
                    data = None
                    say("226 Transfer complete")
                elif command == "MLST":  # of a link: its own size, yet `type=file`
                    say(f"250-Start of list for {argument}\r\n modify=20261207074901;size=18;type=file; "
                        f"{argument}\r\n250 End of list")  # fmt: skip
                elif command == "SIZE":  # follows the link
                    say(
                        f"213 {len(LINKED)}"
                        if name in ("Calls_1.csv", "Calls_2.csv")
                        else f"550 {argument}: Not a regular file"
                    )
                elif command == "MDTM":
                    say("213 20261114083000")
                elif command == "CWD":
                    say(
                        "250 CWD command successful"
                        if name != "Calls_1.csv"
                        else f"550 {argument}: Not a directory"
                    )
                elif command == "DELE":
                    self.deleted.append(argument)
                    say("250 DELE command successful")
                elif command == "QUIT":
                    say("221 Goodbye.")
                    return
                else:
                    say("230 User partner logged in" if command == "PASS" else "200 Command okay")

    @staticmethod
    def _send(listener: socket.socket, payload: bytes) -> None:
        connection, _ = listener.accept()
        listener.close()
        with connection:
            connection.sendall(payload)


@pytest.fixture
def proftpd_like() -> Iterator[ProftpdLike]:
    found = ProftpdLike()
    yield found
    found.close()


def test_a_link_listed_by_proftpds_mlsd_is_taken_as_its_target(
    proftpd_like: ProftpdLike, tmp_path: Path
) -> None:
    transport = FtpTransport(
        Endpoint(host="127.0.0.1", port=proftpd_like.port, username="partner", password="secret",
                 spec=FtpSpec(tls=FtpTls.NONE), timeout=10)
    )  # fmt: skip
    try:
        listed = {remote.name: remote for remote in transport.list_files("/linked", "Calls_*.csv")}
        assert sorted(listed) == ["Calls_1.csv", "Calls_2.csv"]
        linked = listed["Calls_1.csv"]
        assert (linked.size, linked.mtime) == (len(LINKED), OLD)
        transport.fetch(linked, tmp_path / "fetched.csv")  # not "changed while being fetched"
        transport.after_success(linked, "delete", None)
    finally:
        transport.close()

    assert (tmp_path / "fetched.csv").read_bytes() == LINKED
    assert proftpd_like.deleted == ["/linked/Calls_1.csv"]
