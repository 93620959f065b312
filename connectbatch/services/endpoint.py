"""Where a push connection's partner sends files: our host and port, and what they pin (our
SFTP host key, our FTPS certificate). Shown with a new login once (`Provisioned`), and on the
connection's Credentials tab at any time without a password: the partner asks again months
later, and only the password is a secret."""

from __future__ import annotations

from connectbatch.models import Connection, Method
from connectbatch.services.base import Provisioned
from connectbatch.settings import Settings


def push_endpoint(
    settings: Settings,
    connection: Connection,
    username: str = "",
    password: str = "",
    email: str | None = None,
) -> Provisioned:
    """The endpoint of `connection` (a push over SFTP or FTP) with the login given, if any."""
    port = {Method.SFTP: settings.sftp_port, Method.FTP: settings.ftp_port}.get(connection.method)
    host_key = certificate = None
    if connection.method is Method.SFTP:
        from connectbatch.transfer.push.sftp.host_key import host_key_fingerprint, host_key_path

        host_key = host_key_fingerprint(host_key_path(settings.home))
    elif connection.method is Method.FTP and settings.ftp_port:
        # Made now if the server has not started yet, so the partner can pin it from the start.
        from connectbatch.transfer.push.ftp.certificate import ensure_certificate, fingerprint

        cert, _key = ensure_certificate(
            settings.home, settings.ftp_cert_file, settings.ftp_key_file, settings.bind
        )
        certificate = fingerprint(cert)
    return Provisioned(
        settings.partner_host, port, username, password, email,
        host_key_fingerprint=host_key, certificate_fingerprint=certificate,
    )  # fmt: skip
