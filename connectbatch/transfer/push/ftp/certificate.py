"""The FTPS server's certificate: the operator's (CONNECTBATCH_FTP_CERT_FILE / _KEY_FILE), or
a self-signed one made on first start under the data home, so the hosted FTP server always
offers explicit FTPS and never needs clear-text passwords.

A self-signed certificate cannot be checked against a CA, so partners pin it: its SHA-256
fingerprint is logged when the server starts and `fingerprint()` / `server_fingerprint()`
return it for whatever shows a provisioned login (`connectbatch serve`, the app).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
from pathlib import Path

from connectbatch.errors import ConfigurationError
from connectbatch.settings import Settings

log = logging.getLogger("connectbatch.transfer.push.ftp")

GENERATED_DIR = "ftps"
CERT_NAME = "server.crt"
KEY_NAME = "server.key"
VALID_DAYS = 3650  # pinned by fingerprint, not checked against a CA: renewal would only break pins


def generated_paths(home: Path) -> tuple[Path, Path]:
    folder = home / GENERATED_DIR
    return folder / CERT_NAME, folder / KEY_NAME


def _names(host: str) -> list[object]:
    from cryptography import x509

    names: list[object] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    with_host = {host, socket.gethostname()}
    for name in sorted(n for n in with_host if n and n not in ("localhost", "127.0.0.1", "0.0.0.0", "::")):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            try:
                names.append(x509.DNSName(name))
            except ValueError:  # an odd machine name: the certificate works without it
                continue
    return names


def generate_self_signed(cert_file: Path, key_file: Path, host: str = "127.0.0.1") -> None:
    """An EC P-256 self-signed certificate for `host`, localhost and this machine's name.

    Marked as a CA so a client can use the certificate itself as its trust anchor
    (`ssl.create_default_context(cafile=...)`, `curl --cacert`). The key is written 0600
    before any byte of it lands on disk.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ConnectBatch FTPS")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    partial_key = key_file.with_name(key_file.name + ".new")
    fd = os.open(partial_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_bytes)
    os.chmod(partial_key, 0o600)
    partial_cert = cert_file.with_name(cert_file.name + ".new")
    partial_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(partial_key, key_file)
    os.replace(partial_cert, cert_file)  # the certificate last: its presence means "both done"


def fingerprint(cert_file: Path) -> str:
    """SHA-256 of the certificate (DER), as colon-separated upper-case hex: the form
    `openssl x509 -fingerprint -sha256` and most FTP clients show."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def ensure_certificate(
    home: Path, cert_file: Path | None = None, key_file: Path | None = None, host: str = "127.0.0.1"
) -> tuple[Path, Path]:
    """The certificate and key to serve: the configured pair, or the generated one (made now
    if missing)."""
    if (cert_file is None) != (key_file is None):
        raise ConfigurationError("FTPS needs both CONNECTBATCH_FTP_CERT_FILE and CONNECTBATCH_FTP_KEY_FILE")
    if cert_file is not None and key_file is not None:
        for path in (cert_file, key_file):
            if not path.is_file():
                raise ConfigurationError(f"FTPS certificate file not found: {path}")
        return cert_file, key_file
    cert, key = generated_paths(home)
    if not (cert.is_file() and key.is_file()):
        generate_self_signed(cert, key, host)
        log.warning(
            "generated a self-signed FTPS certificate %s, SHA-256 fingerprint %s", cert, fingerprint(cert)
        )
    return cert, key


def server_fingerprint(settings: Settings) -> str | None:
    """The SHA-256 fingerprint partners should pin for the hosted FTPS server, or None when
    there is no certificate yet (the server has not started once) or the FTP server is off."""
    if not settings.ftp_port:
        return None
    cert = settings.ftp_cert_file or generated_paths(settings.home)[0]
    return fingerprint(cert) if cert.is_file() else None
