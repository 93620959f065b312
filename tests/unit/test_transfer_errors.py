"""One wording per network cause for every transfer (`transfer.errors`), and a guard that no
transfer module words these causes itself."""

from __future__ import annotations

import errno
import re
import socket
import ssl
from pathlib import Path

import pytest

import connectbatch.transfer
from connectbatch.transfer.errors import describe_network_error

TRANSFER = Path(connectbatch.transfer.__file__).parent


def describe(exc: BaseException, service: str = "SFTP") -> str | None:
    return describe_network_error(exc, service=service, host="127.0.0.1", port=2222, timeout=7.5)


def certificate_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_message = message
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    return error


@pytest.mark.parametrize("service", ["SFTP", "FTP", "FTPS", "IMAP"])
def test_a_refused_connection_names_the_service_and_the_address(service: str) -> None:
    text = describe(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), service)
    assert text == f"connection refused: is an {service} server listening on 127.0.0.1:2222?"


def test_a_timeout_says_how_long_we_waited() -> None:
    assert describe(TimeoutError("timed out")) == "no answer within 7.5 s (timed out)"
    assert describe(TimeoutError()) == "no answer within 7.5 s (timed out)"  # socket.timeout


def test_an_unknown_host_name_is_named() -> None:
    error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert describe(error) == "the host name '127.0.0.1' could not be resolved (name or service not known)"


def test_a_reset_a_close_and_a_lost_connection_read_differently() -> None:
    assert describe(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")) == (
        "the connection was reset by the server"
    )
    assert describe(EOFError()) == "the server closed the connection"
    assert describe(BrokenPipeError(errno.EPIPE, "Broken pipe")) == "the connection was lost (broken pipe)"


def test_an_untrusted_certificate_says_how_to_trust_it() -> None:
    text = describe(certificate_error("self-signed certificate"), "FTPS")
    assert text is not None
    assert text.startswith("the server's TLS certificate was not accepted: self-signed certificate")
    assert "ca_file" in text and "verify=false" in text


def test_a_certificate_for_another_host_says_which_name_to_use() -> None:
    text = describe(certificate_error("Hostname mismatch, certificate is not valid for 'localhost'."))
    assert text is not None
    assert re.search(r"(?i)hostname mismatch.*connect using a host name the certificate names", text)


def test_another_tls_failure_gives_its_reason() -> None:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"
    assert describe(error) == "TLS failed: WRONG_VERSION_NUMBER"


def test_any_other_os_error_is_its_message_in_a_sentence() -> None:
    assert describe(OSError(errno.EHOSTUNREACH, "No route to host")) == "no route to host"
    assert describe(OSError(errno.EIO, "SSL went away")) == "SSL went away"


def test_a_non_network_error_is_left_to_the_caller() -> None:
    assert describe(ValueError("bad path")) is None


def test_no_other_transfer_module_words_network_causes_itself() -> None:
    """The drift guard: a second copy of these words would drift from the first."""
    phrases = re.compile(r"(?i)connection refused|could not be resolved|no answer within|TLS failed")
    offenders = [
        str(path.relative_to(TRANSFER))
        for path in sorted(TRANSFER.rglob("*.py"))
        if path.name != "errors.py" or path.parent != TRANSFER
        if phrases.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
