"""One file a client opened (paramiko's `SFTPHandle`): a raw descriptor served with
pread/pwrite, the per-file size limit and the push folder's quota (`push.quota`: each write
reserves its bytes first), and what happens at the end of an upload: a closed file goes to the
gateway (through the file system), a failed one is removed and says so again at close (one
refused for the quota also gets a line in the connection's history), and one left open when the
session breaks off is an interrupted upload, not ingested.

Writes continue where the file ends (or overwrite bytes it has); one that starts past its end
is refused and fails the upload. A 1-byte write at byte 200,000,000 made a 200 MB sparse file
that takes no disk here but that staging copied as 200 MB of real bytes, outside the push
quota (which counts what a write reserves, not the holes it leaves). For the same reason a
size set by SETSTAT/FSETSTAT may shrink a file, never grow it (`shrink_to`). Clients write in
order (OpenSSH's `sftp` and paramiko pipeline their writes, but send them in order, and each
channel's requests are served in the order they came), and a resumed upload (`reput`, append)
starts at the end of what is there.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from connectbatch.transfer.push.quota import Upload, over_quota
from connectbatch.transfer.push.sftp.guard import FilePlace
from connectbatch.transfer.push.sftp.protocol import (
    SFTP_FAILURE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
    Refused,
    code_of,
    denied,
    too_large,
)
from connectbatch.transfer.push.writers import Writing

if TYPE_CHECKING:
    from connectbatch.transfer.push.sftp.filesystem import ConfinedFs

log = logging.getLogger("connectbatch.transfer.push.sftp")

MAX_READ_SIZE = 256 * 1024 - 1024  # what OpenSSH's sftp-server answers at most per READ


def gap(offset: int, end: int) -> str:
    """What a client writing past the end of its file is told."""
    return (
        f"writes must continue where the file ends (at byte {end}): a write at byte {offset} "
        "would leave a gap; this upload was refused and its partial file removed"
    )


def shrink_to(fd: int, size: int) -> None:
    """Set an open file's size to `size`, which may keep or shrink it, never grow it: the
    bytes added would be a gap nobody wrote (see the module doc)."""
    current = os.fstat(fd).st_size
    if size > current:
        raise Refused(
            SFTP_FAILURE,
            f"a file cannot be made larger by setting its size ({size} bytes asked, it has "
            f"{current}): write its bytes instead",
        )
    if size < current:
        os.ftruncate(fd, size)


class OpenFile(paramiko.SFTPHandle):  # type: ignore[misc]
    """An open file: a raw descriptor served with pread/pwrite (no Python buffering)."""

    def __init__(
        self,
        fs: ConfinedFs,
        fd: int,
        flags: int,
        entry: str,
        writing: bool,
        size: int,
        upload: Upload | None = None,
        writer: Writing | None = None,
        place: FilePlace | None = None,
    ) -> None:
        super().__init__(flags)
        self.fs = fs
        self.fd: int | None = fd
        self.entry = entry  # host path (real parent + name) as opened or last renamed to
        self.writing = writing
        self.append = bool(flags & os.O_APPEND)
        self.size = size  # the file's size as far as our writes know (the limit applies to it)
        self.failed = False
        self.failure = ""
        self.upload = upload  # the push folder's count of this file (writing handles)
        self.writer = writer  # this file counted as open for writing (`push.writers`)
        self.place = place  # this file counted in its login's open files (`guard.OpenFiles`)

    # Fast paths, called by SftpChannel for READ and WRITE.

    def read_at(self, offset: int, length: int) -> bytes:
        if self.fd is None:
            raise Refused(SFTP_FAILURE, "file is closed")
        return os.pread(self.fd, min(length, MAX_READ_SIZE), offset)

    def write_at(self, offset: int, data: memoryview) -> None:
        if self.failed:
            raise Refused(SFTP_FAILURE, f"upload failed: {self.failure}")
        if self.fd is None:
            raise Refused(SFTP_FAILURE, "file is closed")
        if not self.writing:
            raise denied("file was not opened for writing")
        if offset > self.size and not self.append:
            self._no_gap(offset)
        length = len(data)
        end = (self.size if self.append else offset) + length
        limit = self.fs.account.max_file_bytes
        if end > limit:
            self._fail(f"larger than the limit of {limit} bytes")
            raise too_large(limit)
        if self.upload is not None and not self.upload.extend(end):
            quota = self.upload.limit
            self._fail(f"the push folder's quota of {quota} bytes would be exceeded")
            self.fs.gateway.upload_over_quota(self.fs.account, Path(self.entry))
            raise Refused(SFTP_FAILURE, over_quota(quota))
        written = 0
        try:
            while written < length:  # a regular file takes it all at once unless the disk is full
                done = os.pwrite(self.fd, data[written:] if written else data, offset + written)
                if done <= 0:
                    raise OSError(errno.EIO, "short write")
                written += done
        except OSError as exc:  # e.g. disk full: a file with a hole must never be ingested
            self._fail(f"write failed: {exc.strerror or exc}")
            raise
        if end > self.size:
            self.size = end

    def _no_gap(self, offset: int) -> None:
        """A write past the end this handle knows of: fine if the file has grown that far
        meanwhile (another session writing it), else the upload fails."""
        assert self.fd is not None
        current = os.fstat(self.fd).st_size
        if offset <= current:
            self.size = current
            return
        self._fail(f"a write at byte {offset} would leave a gap after byte {current}")
        raise Refused(SFTP_FAILURE, gap(offset, current))

    def _fail(self, why: str) -> None:
        """The upload cannot succeed: close and remove the partial file; it is not reported
        to the gateway, and every later write or close of this handle fails."""
        self.failed = True
        self._close_fd()
        with contextlib.suppress(OSError):
            os.unlink(self.entry)
        self._finish(kept=False)
        self.fs.forget(self)
        log.warning(
            "upload of %s by %r refused: %s; partial file removed",
            self.fs.virtual(self.entry),
            self.fs.account.username,
            why,
        )
        self.failure = why

    def _close_fd(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def _finish(self, *, kept: bool) -> None:
        """The file is closed: its bytes stay counted in the folder while it is there, and
        it is no longer being written (an ingest may take it)."""
        upload, self.upload = self.upload, None
        if upload is not None:
            upload.finish(kept=kept)
        writer, self.writer = self.writer, None
        moved = self.fs.writes.end(writer)
        if moved is not None:  # renamed by another session while this one wrote it
            self.entry = moved

    # paramiko's SFTPHandle interface (also used by the check-file extension).

    def read(self, offset: int, length: int) -> bytes | int:
        try:
            return self.read_at(offset, length)
        except Refused as exc:
            return exc.code
        except OSError as exc:
            return code_of(exc)

    def write(self, offset: int, data: bytes) -> int:
        try:
            with memoryview(data) as view:
                self.write_at(offset, view)
        except Refused as exc:
            return exc.code
        except OSError as exc:
            return code_of(exc)
        return SFTP_OK

    def stat(self) -> paramiko.SFTPAttributes | int:
        if self.fd is None:
            return SFTP_FAILURE
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))
        except OSError as exc:
            return code_of(exc)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        """FSETSTAT: a size shrinks (or keeps) the file, never grows it (`truncate`), then
        times are applied as by path (`ConfinedFs.chattr`). A refused size is raised: the
        channel's loop replies with the sentence."""
        if not self.fs.account.writable:
            return SFTP_PERMISSION_DENIED
        if attr._flags & attr.FLAG_SIZE:
            self.truncate(attr.st_size)
        return self.fs.apply_times(self.entry, attr)

    def truncate(self, size: int) -> None:
        """Set the size through this handle (paramiko's `SFTPFile.truncate`), which must be
        open for writing to change it (a client sending every attribute back, the size as it
        is, changes nothing): later writes continue from the new end."""
        if self.failed:
            raise Refused(SFTP_FAILURE, f"upload failed: {self.failure}")
        if self.fd is None:
            raise Refused(SFTP_FAILURE, "file is closed")
        if not self.writing:
            if size == os.fstat(self.fd).st_size:
                return
            raise denied("file was not opened for writing")
        shrink_to(self.fd, size)
        self.size = size

    def close(self) -> None:
        """The client closed the file: a finished upload goes to the gateway; a failed one
        raises its error again."""
        if self.failed:
            raise Refused(SFTP_FAILURE, f"upload failed: {self.failure}")
        if self.fd is None:
            return
        self._close_fd()
        if self.writing:
            try:
                self.fs.still_allowed()
            except Refused:  # written for a login or connection since deleted: not kept
                self.failed, self.failure = True, "permission denied"
                with contextlib.suppress(OSError):
                    os.unlink(self.entry)
                self._finish(kept=False)
                self.fs.forget(self)
                raise
        self._finish(kept=True)
        self.fs.forget(self)
        if self.writing and not self.failed:
            self.fs.uploaded(self.entry)

    def abort(self) -> None:
        """The session ended with the file still open: an interrupted upload, not ingested."""
        if self.fd is None:
            return
        self._close_fd()
        self._finish(kept=True)  # the partial file stays for a resume until the sweep
        self.fs.forget(self)
        if self.writing and not self.failed:
            log.warning(
                "upload of %s by %r was interrupted (connection closed while the file was open)",
                self.fs.virtual(self.entry),
                self.fs.account.username,
            )
