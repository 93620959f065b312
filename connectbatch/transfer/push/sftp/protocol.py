"""The SFTP wire vocabulary the hosted server's modules share: paramiko's protocol constants
(typed once here, paramiko is untyped), a refused request (`Refused`) and the STATUS reply built
without paramiko's `Message`, and how an OS error is told to a client (code and plain words,
never a host path)."""

from __future__ import annotations

import errno
import struct

from paramiko import sftp as _sftp

# paramiko is untyped: its protocol constants, typed once here.
CMD_CLOSE: int = _sftp.CMD_CLOSE
CMD_DATA: int = _sftp.CMD_DATA
CMD_INIT: int = _sftp.CMD_INIT
CMD_READ: int = _sftp.CMD_READ
CMD_STATUS: int = _sftp.CMD_STATUS
CMD_VERSION: int = _sftp.CMD_VERSION
CMD_WRITE: int = _sftp.CMD_WRITE
SFTP_OK: int = _sftp.SFTP_OK
SFTP_EOF: int = _sftp.SFTP_EOF
SFTP_NO_SUCH_FILE: int = _sftp.SFTP_NO_SUCH_FILE
SFTP_PERMISSION_DENIED: int = _sftp.SFTP_PERMISSION_DENIED
SFTP_FAILURE: int = _sftp.SFTP_FAILURE
SFTP_BAD_MESSAGE: int = _sftp.SFTP_BAD_MESSAGE
SFTP_OP_UNSUPPORTED: int = _sftp.SFTP_OP_UNSUPPORTED
SFTP_DESC: list[str] = list(_sftp.SFTP_DESC)
KNOWN_REQUESTS: frozenset[int] = frozenset(_sftp.CMD_NAMES)  # paramiko's table of request types

_STATUS_HEADER = struct.Struct(">IBII")  # length, CMD_STATUS, request id, code
U32 = struct.Struct(">I")


class Refused(Exception):
    """A client request we turn down; carries the SFTP status code and a message for it."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or SFTP_DESC[code])
        self.code = code
        self.message = message or SFTP_DESC[code]


_DENIED = "permission denied"


def denied(why: str = _DENIED) -> Refused:
    return Refused(SFTP_PERMISSION_DENIED, why)


def too_large(limit: int) -> Refused:
    return Refused(SFTP_FAILURE, f"file too large: the limit is {limit} bytes per file")


def status_packet(request_id: int, code: int, message: str | None = None) -> bytes:
    """An SFTP STATUS reply, built without paramiko's Message (one per WRITE: it adds up)."""
    text = (message if message is not None else SFTP_DESC[code]).encode("utf-8", "replace")
    tail = U32.pack(len(text)) + text + U32.pack(0)  # message, empty language tag
    return _STATUS_HEADER.pack(1 + 4 + 4 + len(tail), CMD_STATUS, request_id, code) + tail


def code_of(exc: OSError) -> int:
    """The SFTP status code for an OS error (paramiko's mapping, plus EPERM as denied)."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SFTP_PERMISSION_DENIED
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return SFTP_NO_SUCH_FILE
    return SFTP_FAILURE


def message_of(exc: OSError) -> str:
    """An OS error in plain words for the client, without host paths."""
    return (exc.strerror or SFTP_DESC[code_of(exc)]).lower()
