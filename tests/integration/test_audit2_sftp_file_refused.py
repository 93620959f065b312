"""An SFTP server that will not send one listed file (it answers SSH_FX_FAILURE), against a real
socket and paramiko's own SFTP server: only that file is not taken, as on FTP.

The bug: a server refusing to open one file with the generic failure status (what Windows SFTP
servers answer for a file another process still has open, the partner's export still writing
it; OpenSSH for a link that became a loop) or failing a read of it, raised a plain
TransportError: the whole run Failed, the files after it waited, and the credential was marked
Error as if the login were wrong, on every poll until the partner's writer let go. Only "no such
file" and "permission denied" were taken as the file's own refusal. Any SFTP status the server
answers about one file is now that file's (RemoteFileRefusedError): recorded as skipped, the
files beside it loaded, the login left Active, and a later run tries it again.
"""

from __future__ import annotations

from collections.abc import Iterator

import paramiko
import pytest
from helpers import call_csv
from hostile import ScriptedSftpServer
from paramiko.sftp import SFTP_FAILURE, SFTP_OK
from paramiko.sftp_handle import SFTPHandle
from paramiko.sftp_si import SFTPServerInterface

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.specs import SftpSpec

USER, PASSWORD = "partner", "partner-secret"
MTIME = 1_700_000_000  # Nov 2023: old enough for any minimum age
FILES = {
    "Calls_1.csv": call_csv(2, prefix="one"),
    "Calls_2_open.csv": call_csv(2, prefix="busy"),  # open refused: another process has it
    "Calls_3_read.csv": call_csv(2, prefix="bad"),  # open works, reading fails
    "Calls_4.csv": call_csv(3, prefix="four"),
}


def _attributes(mode: int, size: int = 0, name: str = "") -> paramiko.SFTPAttributes:
    attributes = paramiko.SFTPAttributes()
    attributes.st_mode, attributes.st_size, attributes.st_mtime = mode, size, MTIME + len(name)
    attributes.filename = name
    return attributes


class _File(SFTPHandle):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def read(self, offset: int, length: int) -> bytes | int:
        if "read" in self.name:
            return SFTP_FAILURE
        return FILES[self.name][offset : offset + length]

    def stat(self) -> paramiko.SFTPAttributes:
        return _attributes(0o100644, len(FILES[self.name]), self.name)


class _Folder(SFTPServerInterface):
    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes]:
        return [_attributes(0o100644, len(data), name) for name, data in FILES.items()]

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        name = path.rsplit("/", 1)[-1]
        if name in FILES:
            return _attributes(0o100644, len(FILES[name]), name)
        return _attributes(0o40755)

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> _File | int:
        name = path.rsplit("/", 1)[-1]
        return SFTP_FAILURE if "open" in name else _File(name)

    def remove(self, path: str) -> int:
        return SFTP_OK


@pytest.fixture
def server() -> Iterator[ScriptedSftpServer]:
    found = ScriptedSftpServer(paramiko.SFTPServer, _Folder, USER, PASSWORD)
    yield found
    found.close()


def test_a_file_the_server_fails_to_send_costs_only_that_file(
    services: Services, server: ScriptedSftpServer
) -> None:
    draft = Connection(
        "Windows partner", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host="127.0.0.1", port=server.port, folder="/outbox", pattern="Calls_*.csv", transfer=SftpSpec(),
    )  # fmt: skip
    services.create_connection(draft, CredentialInput("partner", USER, PASSWORD))

    run = services.pull("Windows partner")

    assert run.status is RunStatus.COMPLETED, run.reason
    files = {f.name: (f.state, f.message or "") for f in services.run_files(run.id)}
    assert files["Calls_1.csv"][0] == files["Calls_4.csv"][0] == "loaded"
    for name in ("Calls_2_open.csv", "Calls_3_read.csv"):
        state, message = files[name]
        assert state == "skipped" and "/outbox/" + name in message and "a later run tries it again" in message
    assert "Traceback" not in (run.reason or "")
    [credential] = services.credentials("Windows partner")
    assert credential.status == "Active" and credential.last_error is None
    assert services.count_actions("Windows partner") == 5
