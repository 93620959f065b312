"""The SFTP protocol loop of one channel (paramiko's `SFTPServer`, made fast).

paramiko's stock loop reads every request with two small channel reads, builds a `Message` per
request, writes through a buffered Python file and sends every reply as its own SSH packet.
Here requests are parsed out of large channel reads, WRITE and READ are served straight from
that buffer with `os.pwrite`/`os.pread`, and replies are collected and sent in one SSH packet
per batch, always before waiting for more input, so a client never waits on a held-back reply.
Everything else (open, stat, rename, ...) still goes through paramiko's `_process`.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from typing import TYPE_CHECKING, Any

import paramiko

from connectbatch.transfer.push.sftp.guard import LogLimiter
from connectbatch.transfer.push.sftp.handle import OpenFile
from connectbatch.transfer.push.sftp.protocol import (
    CMD_CLOSE,
    CMD_DATA,
    CMD_INIT,
    CMD_READ,
    CMD_VERSION,
    CMD_WRITE,
    KNOWN_REQUESTS,
    SFTP_BAD_MESSAGE,
    SFTP_EOF,
    SFTP_FAILURE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    U32,
    Refused,
    code_of,
    message_of,
    status_packet,
)

if TYPE_CHECKING:
    from connectbatch.transfer.push.sftp.login import Login

log = logging.getLogger("connectbatch.transfer.push.sftp")
# A request that fails unexpectedly is logged with its traceback, at most a few a minute for
# the whole server: any logged-in client can send thousands a second (~500 bytes of log for
# each 9-byte packet, a disk filled by one partner).
_QUIET = LogLimiter(log)

RECV_SIZE = 4 * 1024 * 1024  # take everything the channel has buffered in one call
FLUSH_BYTES = 1024 * 1024  # send collected replies once they reach this size (large downloads)
MAX_REQUEST_BYTES = 1024 * 1024 + 1024  # a larger SFTP packet is a broken or hostile client
SFTP_VERSION = 3

_DATA_HEADER = struct.Struct(">IBII")  # length, CMD_DATA, request id, data length
_WRITE_ARGS = struct.Struct(">QI")  # offset, data length
_READ_ARGS = struct.Struct(">QI")  # offset, length


class ProtocolError(Exception):
    """The client sent something that is not SFTP: the channel is closed."""


class SftpChannel(paramiko.SFTPServer):  # type: ignore[misc]
    """paramiko's SFTP server with buffered input, coalesced output and fast READ/WRITE."""

    def __init__(
        self, channel: paramiko.Channel, name: str, server: Login, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(channel, name, server, *args, **kwargs)
        self._in = bytearray()
        self._pos = 0
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._peer = server.peer
        server.server.track_channel(self)

    # --- framing ---------------------------------------------------------------------------------

    def _fill(self) -> None:
        """Send what is waiting, then block until the channel has more bytes for us."""
        self._flush()
        chunk = self.sock.recv(RECV_SIZE)
        if not chunk:
            raise EOFError
        if self._pos:
            del self._in[: self._pos]
            self._pos = 0
        self._in += chunk

    def _next(self) -> tuple[int, int]:
        """(start, end) in the input buffer of the next whole packet's body (type byte first)."""
        while True:
            available = len(self._in) - self._pos
            if available >= 4:
                (length,) = U32.unpack_from(self._in, self._pos)
                if length < 1 or length > MAX_REQUEST_BYTES:
                    raise ProtocolError(f"bad SFTP packet length {length}")
                if available >= 4 + length:
                    start = self._pos + 4
                    self._pos = start + length
                    return start, self._pos
            self._fill()

    def _read_packet(self) -> tuple[int, bytes]:
        start, end = self._next()
        return self._in[start], bytes(self._in[start + 1 : end])

    def _send_packet(self, t: int, packet: paramiko.Message) -> None:
        body = packet.asbytes()
        self._queue(U32.pack(len(body) + 1) + bytes((t,)) + body)

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._out:
            data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._out.clear()
            self._out_bytes = 0
            self.sock.sendall(data)

    def _send_server_version(self) -> int:
        """Answer INIT with version 3, advertising posix-rename (OpenSSH's `sftp` then renames
        with it, replacing an existing file as people expect)."""
        kind, data = self._read_packet()
        if kind != CMD_INIT or len(data) < 4:
            raise ProtocolError("the client did not start with SFTP INIT")
        msg = paramiko.Message()
        msg.add_int(SFTP_VERSION)
        msg.add_string("posix-rename@openssh.com")
        msg.add_string("1")
        self._send_packet(CMD_VERSION, msg)
        return int(U32.unpack_from(data)[0])

    # --- the loop --------------------------------------------------------------------------------

    def start_subsystem(self, name: str, transport: paramiko.Transport, channel: paramiko.Channel) -> None:
        self.sock = channel
        try:
            self._send_server_version()
            self.server.session_started()
            while True:
                start, end = self._next()
                if end - start < 5:
                    raise ProtocolError("SFTP packet without a request id")
                kind = self._in[start]
                (request_id,) = U32.unpack_from(self._in, start + 1)
                try:
                    if kind == CMD_WRITE:
                        self._write(request_id, start + 5, end)
                    elif kind == CMD_READ:
                        self._read(request_id, start + 5, end)
                    elif kind == CMD_CLOSE and self._close(request_id, start + 5):
                        pass
                    elif kind not in KNOWN_REQUESTS:  # paramiko's dispatch fails on it
                        self._queue(status_packet(request_id, SFTP_OP_UNSUPPORTED, "unknown request type"))
                    else:
                        msg = paramiko.Message(bytes(self._in[start + 5 : end]))
                        self._process(kind, request_id, msg)
                except Refused as exc:
                    self._queue(status_packet(request_id, exc.code, exc.message))
                except OSError as exc:
                    self._queue(status_packet(request_id, code_of(exc), message_of(exc)))
                except UnicodeDecodeError:
                    self._queue(status_packet(request_id, SFTP_FAILURE, "file names must be UTF-8"))
                except Exception:
                    _QUIET.log(
                        "request", logging.ERROR, "SFTP request %d from %s failed", kind, self._peer,
                        exc_info=True,
                    )  # fmt: skip
                    self._queue(status_packet(request_id, SFTP_FAILURE))
            # (the loop only ends by an exception: EOF or a broken client)
        except EOFError:
            # The client is done. OpenSSH's scp (SFTP mode) exits with the session's exit
            # status, and without one reported failure (1) after a good upload.
            with contextlib.suppress(Exception):
                self._flush()
                channel.send_exit_status(0)
        except ProtocolError as exc:
            log.warning("closing the SFTP channel of %s: %s", self._peer, exc)
            with contextlib.suppress(Exception):
                channel.send_exit_status(1)
        except Exception as exc:
            if transport.is_active() and not channel.closed:
                log.warning("SFTP channel of %s ended: %r", self._peer, exc, exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                self._flush()

    def _handle(self, start: int) -> tuple[OpenFile, int]:
        (length,) = U32.unpack_from(self._in, start)
        handle = self.file_table.get(bytes(self._in[start + 4 : start + 4 + length]))
        if not isinstance(handle, OpenFile):
            raise Refused(SFTP_BAD_MESSAGE, "Invalid handle")
        return handle, start + 4 + length

    def _close(self, request_id: int, start: int) -> bool:
        """CLOSE of one of our files (False: a folder handle, paramiko's business). Unlike
        paramiko's server, a failed upload says so again here: clients check it."""
        (length,) = U32.unpack_from(self._in, start)
        name = bytes(self._in[start + 4 : start + 4 + length])
        handle = self.file_table.get(name)
        if not isinstance(handle, OpenFile):
            return False
        del self.file_table[name]
        handle.close()  # raises Refused for an upload that failed
        self._queue(status_packet(request_id, SFTP_OK))
        return True

    def _write(self, request_id: int, start: int, end: int) -> None:
        handle, position = self._handle(start)
        offset, length = _WRITE_ARGS.unpack_from(self._in, position)
        position += _WRITE_ARGS.size
        if position + length > end:
            raise ProtocolError("WRITE request shorter than its data")
        with memoryview(self._in) as view, view[position : position + length] as data:
            handle.write_at(offset, data)
        self._queue(status_packet(request_id, SFTP_OK))

    def _read(self, request_id: int, start: int, end: int) -> None:
        handle, position = self._handle(start)
        offset, length = _READ_ARGS.unpack_from(self._in, position)
        data = handle.read_at(offset, length)
        if not data:
            self._queue(status_packet(request_id, SFTP_EOF))
            return
        self._queue(_DATA_HEADER.pack(9 + len(data), CMD_DATA, request_id, len(data)))
        self._queue(data)

    def finish_subsystem(self) -> None:
        """Close the channel; files still open were interrupted uploads (not reported)."""
        try:
            self.server.session_ended()
        finally:
            paramiko.SubsystemHandler.finish_subsystem(self)
            files: dict[bytes, Any] = self.file_table
            for handle in list(files.values()):
                with contextlib.suppress(Exception):
                    if isinstance(handle, OpenFile):
                        handle.abort()
                    else:
                        handle.close()
            files.clear()
            folders: dict[bytes, Any] = self.folder_table
            folders.clear()
