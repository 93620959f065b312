"""FTPS: our session and data channel over pyftpdlib's AUTH TLS / PBSZ / PROT support, built on
first use because that support needs pyOpenSSL, which a plain-FTP deployment need not install."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from connectbatch.errors import ConfigurationError
from connectbatch.transfer.push.ftp.data_channel import LimitedDTP
from connectbatch.transfer.push.ftp.session import REMOVED_COMMANDS, TLS_REQUIRED, PushHandler, log

PROT_C_REFUSED = "534 PROT C refused: this server requires protected data connections; use PROT P."


@functools.cache
def tls_classes() -> tuple[type[Any], type[Any]]:
    """The FTPS session and data-channel classes. Built on first use because pyftpdlib's
    TLS support needs pyOpenSSL, which a plain-FTP deployment need not install."""
    try:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
    except ImportError:
        raise ConfigurationError(
            "explicit FTPS needs pyOpenSSL (pip install pyopenssl); "
            "or start the FTP server without a certificate"
        ) from None

    class _TlsLimitedDTP(TLS_DTPHandler, LimitedDTP):  # type: ignore[misc]
        """TLS data channel (SSL layer first) over our size-limited data channel."""

        def send(self, data: bytes) -> int:
            """Never SSL_write zero bytes. An empty listing makes asynchat send b"";
            OpenSSL 3 fails that call, pyftpdlib takes the failure for a vanished client
            and drops the socket in the middle of the TLS handshake, and the client's
            unwrap() then fails with SHUTDOWN_WHILE_IN_INIT. Sending nothing instead lets
            the handshake and a clean TLS shutdown happen as for any other transfer."""
            if not data:
                return 0
            return int(super().send(data))

        def handle_ssl_established(self) -> None:
            """A connection to the passive port finished its handshake: is it the
            session's? (`passive`)"""
            if self.passive is not None:
                self.passive.handshake_done(self)

        def handle_failed_ssl_handshake(self) -> None:
            """A candidate whose handshake failed is just closed: whatever reached the
            passive port must not put a 522 on the partner's control connection."""
            if self.passive is not None:
                self.close()
                return
            super().handle_failed_ssl_handshake()

    class _TlsPushHandler(PushHandler, TLS_FTPHandler):  # type: ignore[misc]
        """Our session over pyftpdlib's AUTH TLS / PBSZ / PROT support."""

        dtp_handler = _TlsLimitedDTP
        tls_control_required = True
        tls_data_required = True
        require_tls_reuse = False  # data connections must resume the control's TLS session
        tls_resumed = False  # one did: from now on only resumptions are the session's
        proto_cmds: ClassVar[dict[str, Any]] = {
            name: spec for name, spec in TLS_FTPHandler.proto_cmds.items() if name not in REMOVED_COMMANDS
        }

        def process_command(self, cmd: str, *args: Any, **kwargs: Any) -> None:
            """A clear-text login gets 530 saying what to do (pyftpdlib's own reply is a
            550 that clients report as a missing file)."""
            if cmd in ("USER", "PASS") and self.tls_control_required and not self._ssl_established:
                self.respond(TLS_REQUIRED, logfun=log.info)
                return
            super().process_command(cmd, *args, **kwargs)

        def ftp_PROT(self, line: str) -> None:
            """PROT C refused when TLS is required: accepting it ("200 Protection set to
            Clear") only made every later transfer fail with 550."""
            if line.strip().upper() == "C" and self.tls_data_required and self._pbsz:
                self.respond(PROT_C_REFUSED, logfun=log.info)
                return
            super().ftp_PROT(line)

    return _TlsPushHandler, _TlsLimitedDTP
