"""The pipelined SFTP download: many large READ requests in flight on the SFTP channel, replies
parsed straight out of big channel reads and written with `os.pwrite` at their offsets.

Why not paramiko's `get()`: it runs at roughly half the speed of OpenSSH's `sftp` on a fast link
(issue 5), from per-packet Python work (Message objects, a prefetch thread, re-buffering). The
tuning below was measured against OpenSSH 9.2 on loopback (see bench/bench_sftp.py).
"""

from __future__ import annotations

import errno
import os
import struct
from collections import deque
from collections.abc import Callable

import paramiko
from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS, SFTP_EOF

from connectbatch.errors import RemoteFileRefusedError, TransportError
from connectbatch.transfer.base import too_large

# 256 KiB SSH packets: a quarter of the per-packet Python work of paramiko's 32 KiB default.
MAX_PACKET_SIZE = 256 * 1024
# The window must exceed what is in flight, or the server stalls waiting for window adjusts.
WINDOW_SIZE = 16 * 1024 * 1024
# OpenSSH's sftp-server answers reads of up to 256 KiB - 1 KiB (its `limits@openssh.com`);
# other servers are only known to honour 32 KiB (the SFTP drafts' minimum), and a short reply
# is re-requested, so a too-large request costs round trips but never data.
OPENSSH_REQUEST_SIZE = 256 * 1024 - 1024
GENERIC_REQUEST_SIZE = 32 * 1024
MIN_REQUEST_SIZE = 4096
# Bytes requested but not yet answered: enough to keep a fast link busy, below the window.
IN_FLIGHT_BYTES = 8 * 1024 * 1024
MAX_OUTSTANDING = 256
RECV_SIZE = 4 * 1024 * 1024
MAX_SFTP_PACKET = 16 * 1024 * 1024  # anything larger is a broken stream, not data
# Our READ request ids live far above paramiko's own counter (which starts at 1), so a reply
# can never be mistaken for one of SFTPClient's.
REQUEST_ID_BASE = 0x4000_0000


def request_size(configured: int | None, server_version: str | None) -> int:
    """The READ size to ask for: the connection's `request_size` setting, else the largest the
    server is known to honour."""
    if configured:
        return max(MIN_REQUEST_SIZE, int(configured))
    if (server_version or "").startswith("SSH-2.0-OpenSSH"):
        return OPENSSH_REQUEST_SIZE
    return GENERIC_REQUEST_SIZE


class RequestIds:
    """Ids for our READ requests, kept per SSH connection: they live far above paramiko's own
    counter (which starts at 1), so SFTPClient never mistakes one of our replies for its own."""

    def __init__(self) -> None:
        self._next = REQUEST_ID_BASE

    def take(self) -> int:
        request_id = self._next
        self._next = (request_id + 1) & 0xFFFF_FFFF or REQUEST_ID_BASE
        return request_id


def download(
    channel: paramiko.Channel,
    handle: bytes,
    size_hint: int,
    fd: int,
    *,
    size: int,
    ids: RequestIds,
    where: str,
    path: str,
    abandon: Callable[[], None],
    limit: int | None = None,
) -> int:
    """Read the open remote file `handle` into `fd`; returns the number of bytes.

    Keeps up to IN_FLIGHT_BYTES of READ requests of `size` bytes outstanding on the SFTP
    channel, sending them in batches, and parses the replies straight out of large channel
    reads. Up to the size we expect, requests are sent back to back; past it we probe one
    request at a time until the server says end-of-file (a file that grew is still read to its
    end). A short reply is re-requested for the rest and shrinks later requests (a server with a
    lower read limit). If anything goes wrong midway `abandon` is called: replies may still be
    in flight, so the caller must discard the SFTP session before it is used again. Data past
    `limit` bytes (a file that keeps growing, a server that never says end-of-file) stops the
    download with RemoteFileTooLargeError instead of filling the disk."""
    request_size = size
    max_outstanding = max(16, min(MAX_OUTSTANDING, IN_FLIGHT_BYTES // request_size))
    prefix = struct.pack(">I", len(handle)) + handle
    outstanding: dict[int, tuple[int, int]] = {}  # request id -> (offset, length)
    retry: deque[tuple[int, int]] = deque()  # remainders of short replies
    next_offset = 0
    eof_at: int | None = None
    received = 0
    buffer = bytearray()
    position = 0
    complete = False

    def request(offset: int, length: int) -> bytes:
        request_id = ids.take()
        outstanding[request_id] = (offset, length)
        body = struct.pack(">BI", CMD_READ, request_id) + prefix
        body += struct.pack(">QI", offset, length)
        return struct.pack(">I", len(body)) + body

    try:
        while True:
            batch: list[bytes] = []
            while retry and len(outstanding) < max_outstanding:
                batch.append(request(*retry.popleft()))
            while (
                eof_at is None
                and len(outstanding) < max_outstanding
                and (next_offset < size_hint or not outstanding)
            ):
                batch.append(request(next_offset, request_size))
                next_offset += request_size
            if batch:
                channel.sendall(b"".join(batch))
            if not outstanding:
                break

            # Wait until at least one whole reply is buffered.
            while True:
                available = len(buffer) - position
                if available >= 4:
                    (length,) = struct.unpack_from(">I", buffer, position)
                    if length > MAX_SFTP_PACKET or length < 5:
                        raise TransportError(
                            f"SFTP {where}: the server sent a malformed reply while {path} was downloading"
                        )
                    if available >= 4 + length:
                        break
                chunk = channel.recv(RECV_SIZE)
                if not chunk:
                    raise EOFError("channel closed")
                if position:
                    del buffer[:position]
                    position = 0
                buffer += chunk

            # Handle every whole reply in the buffer.
            with memoryview(buffer) as view:
                while len(buffer) - position >= 9:
                    length, kind, request_id = struct.unpack_from(">IBI", buffer, position)
                    end = position + 4 + length
                    if end > len(buffer):
                        break
                    if request_id not in outstanding:
                        raise TransportError(
                            f"SFTP {where}: unexpected reply from the server while {path} was downloading"
                        )
                    offset, asked = outstanding.pop(request_id)
                    if kind == CMD_DATA:
                        (got,) = struct.unpack_from(">I", buffer, position + 9)
                        start = position + 13
                        if got > asked or start + got > end:
                            raise TransportError(
                                f"SFTP {where}: the server sent more data than "
                                f"asked for while {path} was downloading"
                            )
                        if limit is not None and offset + got > limit:
                            raise too_large(f"SFTP {where}", path, limit)
                        written = os.pwrite(fd, view[start : start + got], offset)
                        if written != got:  # pwrite on a regular file writes it all
                            raise OSError(errno.EIO, "short write to the local file")
                        received += got
                        if 0 < got < asked:
                            retry.append((offset + got, asked - got))
                            if got >= MIN_REQUEST_SIZE:
                                request_size = min(request_size, got)
                        elif got == 0:  # some servers answer EOF this way
                            eof_at = offset if eof_at is None else min(eof_at, offset)
                    elif kind == CMD_STATUS:
                        (code,) = struct.unpack_from(">I", buffer, position + 9)
                        if code != SFTP_EOF:  # about this file: the session is replaced
                            message = _status_text(buffer, position + 13, end)
                            raise RemoteFileRefusedError(
                                f"SFTP {where}: reading {path} failed: the server answered {message!r}"
                            )
                        eof_at = offset if eof_at is None else min(eof_at, offset)
                    else:
                        raise TransportError(
                            f"SFTP {where}: unexpected reply type {kind} while {path} was downloading"
                        )
                    position = end
        complete = True
    finally:
        if not complete:
            abandon()
    if eof_at is not None and received != eof_at:
        raise TransportError(f"SFTP {where}: {path} arrived incomplete ({received} of {eof_at} bytes)")
    return received


def refused(
    exc: OSError, host: str, where: str, path: str, user: str | None
) -> RemoteFileRefusedError | None:
    """The server's refusal to open the listed file `path` (paramiko raises an SFTP status as
    OSError: ENOENT, EACCES, or no errno with the server's words for any other), as that file's
    own (RemoteFileRefusedError: the files beside it go on, a later run tries it again); None
    for what is no answer about the file (a timeout, a closed connection: the run fails).
    A Windows server answers the generic failure for a file the partner's export still has
    open, which failed the whole run and marked the login Error on every poll."""
    if exc.errno == errno.ENOENT:
        return RemoteFileRefusedError(
            f"file {path} does not exist on host {host} any more "
            "(deleted or renamed since the folder was listed)"
        )
    if exc.errno == errno.EACCES:
        return RemoteFileRefusedError(
            f"permission denied reading file {path} on host {host}: the partner must let user {user} read it"
        )
    if type(exc) is OSError and exc.errno is None:  # not a subclass: TimeoutError, ConnectionError
        said = str(exc) or "the server reported an error"
        return RemoteFileRefusedError(
            f"SFTP {where}: the server refused to send {path}: it answered {said!r} (is the "
            "partner's export still writing it?)"
        )
    return None


def _status_text(buffer: bytearray, start: int, end: int) -> str:
    """The human-readable message of an SFTP STATUS reply (may be empty)."""
    try:
        (length,) = struct.unpack_from(">I", buffer, start)
        text = bytes(buffer[start + 4 : min(end, start + 4 + length)]).decode("utf-8", "replace")
    except struct.error:
        text = ""
    return text or "the server reported an error"
