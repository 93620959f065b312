"""What an FTP pull says when a command fails: `<FTP|FTPS> host:port: <command> failed: <what the
server or the network said>`, in words a person can act on, never with the password. Apart from
the transport (`transport.FtpTransport._error`) because the wording is its own concern: which
reply or network error it was, and when a refused connection is the transfer's, not the login's.
"""

from __future__ import annotations

import ftplib

from connectbatch.errors import DataConnectionError, TransportError
from connectbatch.secrets import redact
from connectbatch.transfer.base import Endpoint
from connectbatch.transfer.errors import describe_network_error
from connectbatch.transfer.pull.ftp.names import printable

__all__ = ["detail", "failure"]

# The commands that open a data connection once logged in (`DataConnectionError`).
_DATA_COMMANDS = ("LIST ", "NLST ", "MLSD ", "RETR ")


def failure(
    proto: str, endpoint: Endpoint, port: int, command: str, exc: BaseException, problem: str = ""
) -> TransportError:
    """The error for `command` on `proto` ("FTP" or "FTPS") at the endpoint's host and `port`;
    `problem`, when given, leads and the command's own failure follows in brackets. The
    password is masked in case a server echoes it back in a reply."""
    where = f"{proto} {endpoint.host}:{port}"
    if isinstance(exc, ConnectionRefusedError) and command.startswith(_DATA_COMMANDS):
        # logged in, so the control port answers: this was the transfer's own connection
        # (it was worded "is an FTP server listening on <control port>?", and the login
        # marked Error)
        message = (
            f"{where}: {command} failed: the data connection was refused: the server "
            "answers here but not on the passive port it named for the transfer (a firewall "
            "before its passive port range?)"
        )
        return DataConnectionError(printable(redact(message, endpoint.password)))
    said = detail(proto, endpoint, port, exc)
    message = f"{where}: {problem} ({command}: {said})" if problem else f"{where}: {command} failed: {said}"
    return TransportError(printable(redact(message, endpoint.password)))


def detail(proto: str, endpoint: Endpoint, port: int, exc: BaseException) -> str:
    """The part of an error a person can act on, in words: the server's reply, or the
    network's (`transfer.errors`)."""
    if isinstance(exc, ftplib.Error):
        reply = str(exc).strip()
        return f"the server replied {reply!r}" if reply else "the server gave no reply"
    described = describe_network_error(
        exc, service=proto, host=endpoint.host, port=port, timeout=endpoint.timeout
    )
    return described or str(exc) or type(exc).__name__
