"""An FTP upload our disk cannot take: a 452 saying so, the partial file removed, the
server up for everyone.

A full disk made the write raise inside pyftpdlib: the client got no reply at all (its STOR
timed out), the close raised the same error again (a CRITICAL traceback), the log said the
client had broken the upload off, and the partial file stayed in the push folder, keeping the
disk full for every partner until the sweep (crash audit; SFTP already answered it). The disk
fills here where the file's own writes say so (ENOSPC from the file object the server writes
to), against the real hosted server and a real ftplib client."""

from __future__ import annotations

import contextlib
import errno
import ftplib
import io
from typing import Any

import pytest
from helpers import call_csv
from helpers.push import ftps, push_login
from test_push_limits import ftp_server, waiting_files

from connectbatch.models import Method, RunStatus
from connectbatch.services import Services
from connectbatch.transfer.push.ftp import data_channel

DISK_FULL = "^452 Upload aborted: our server's disk is full; nothing was kept or loaded"


class _FullDisk:
    """The upload's file, on a disk with `room` bytes left (`flushing`: the last bytes fail
    only when flushed, as a buffered file's do at its close)."""

    def __init__(self, raw: Any, room: int, flushing: bool) -> None:
        self.raw, self.room, self.flushing, self.written = raw, room, flushing, 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > self.room and not self.flushing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(self.raw.write(data))

    def flush(self) -> None:
        if self.written > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.raw.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@pytest.mark.parametrize("flushing", [False, True], ids=["while-writing", "at-the-last-flush"])
def test_an_upload_our_disk_cannot_take_gets_452_and_leaves_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch, flushing: bool
) -> None:
    connection, acme = push_login(services, "Acme", Method.FTP)
    data = call_csv(200, prefix="full")
    init = data_channel.CappedFile.__init__

    def on_a_full_disk(self: data_channel.CappedFile, raw: Any, *args: Any) -> None:
        init(self, _FullDisk(raw, len(data) // 2, flushing), *args)

    with ftp_server(services) as (gateway, server), contextlib.closing(ftps(server, acme)) as ftp:
        with monkeypatch.context() as full:
            full.setattr(data_channel.CappedFile, "__init__", on_a_full_disk)
            with pytest.raises(ftplib.error_temp, match=DISK_FULL):
                try:
                    ftp.storbinary("STOR calls_1.csv", io.BytesIO(data))
                except OSError:  # cut off while still sending: the 452 is on its way
                    ftp.voidresp()
        assert ftp.nlst() == []  # the session goes on; the partial file is gone
        assert waiting_files(services, connection) == []
        gateway.wait(20.0)
        assert services.runs("Acme") == []  # nothing loaded

        assert ftp.storbinary("STOR calls_1.csv", io.BytesIO(data)).startswith("226")  # room again
        gateway.wait(20.0)
    [run] = services.runs("Acme")
    assert (run.status, run.rows_accepted) == (RunStatus.COMPLETED, 200)
