"""How a network failure reads, for every transfer: one wording per cause (refused, timed out,
name not resolved, reset, closed, lost, TLS certificate, other TLS failure), with the service
and the address filled in.

A person fixing a connection should read the same words for the same cause whatever the
method, so the SFTP, FTP and e-mail pulls all describe socket and TLS errors here. Each
transport keeps only what its protocol alone knows (FTP reply codes, IMAP NO/BAD answers, SSH
authentication and handshake) and says where and what it was doing around these words:
``FTP 127.0.0.1:21: connect failed: <this>``. `tests/unit/test_transfer_errors.py` fails if a
transfer module words one of these causes itself.
"""

from __future__ import annotations

import socket
import ssl


def describe_network_error(
    exc: BaseException, *, service: str, host: str, port: int, timeout: float
) -> str | None:
    """The cause of `exc` in plain words, or None when it is not a network or TLS error (the
    caller then words it itself). `service` is what should be listening there ("SFTP",
    "FTPS", "IMAP"); `timeout` is the limit that ran out, in seconds."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        if "mismatch" in reason.lower():
            return (
                f"the server's TLS certificate was not accepted: {reason} (connect using a "
                "host name the certificate names, or set verify=false)"
            )
        return (
            f"the server's TLS certificate was not accepted: {reason} (trust its CA with "
            "the ca_file setting, or set verify=false for a self-signed certificate you accept)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return f"no answer within {timeout:g} s (timed out)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused: is an {service} server listening on {host}:{port}?"
    if isinstance(exc, socket.gaierror):
        return f"the host name {host!r} could not be resolved ({_plain(exc.strerror or str(exc))})"
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset by the server"
    if isinstance(exc, EOFError):
        return "the server closed the connection"
    if isinstance(exc, ConnectionError):  # broken pipe, aborted
        return f"the connection was lost ({_plain(exc.strerror or str(exc))})"
    if isinstance(exc, OSError):
        return _plain(exc.strerror or str(exc)) or type(exc).__name__
    return None


def _plain(text: str) -> str:
    """An OS message as part of a sentence: "No route to host" -> "no route to host" (an
    acronym such as "SSL" keeps its capitals)."""
    if text[1:2].isupper():
        return text
    return text[:1].lower() + text[1:]
