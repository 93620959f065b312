"""TLS sessions for FTPS: data connections that resume the control connection's TLS session,
and implicit FTPS (TLS from the first byte). Both are ftplib.FTP_TLS with one method changed."""

from __future__ import annotations

import ftplib
import socket
import ssl
import sys
from typing import Any

from connectbatch.transfer.pull.ftp.active import data_connection
from connectbatch.transfer.pull.ftp.reading import BoundedReplies


class SessionReusingFTPTLS(BoundedReplies, ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session.

    Servers such as vsftpd (`require_ssl_reuse=YES`, its default), FileZilla Server and
    ProFTPD with `NoSessionReuseRequired` off close a data connection that starts a fresh
    TLS session ("522 SSL connection failed: session reuse required"), because that is how
    they know the data connection comes from the client that logged in. Plain ftplib never
    resumes, so it cannot list or download from them.
    """

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = data_connection(self, cmd, rest)
        if getattr(self, "_prot_p", False):
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


class ImplicitFTPTLS(SessionReusingFTPTLS):
    """Implicit FTPS (the old port-990 style): TLS from the first byte, before the server's
    greeting, instead of AUTH TLS on a plain connection. Some partners still run only this."""

    def connect(
        self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None
    ) -> str:
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        if source_address is not None:
            self.source_address = source_address
        sys.audit("ftplib.connect", self, self.host, self.port)
        raw = socket.create_connection(
            (self.host, self.port), self.timeout, source_address=self.source_address
        )
        self.sock = self.context.wrap_socket(raw, server_hostname=self.host)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome
