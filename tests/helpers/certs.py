"""A self-signed certificate for TLS tests of servers on 127.0.0.1 (Dovecot, our FTPS server):
the one our hosted FTPS server generates for itself, so tests and product make it one way."""

from __future__ import annotations

from pathlib import Path

from connectbatch.transfer.push.ftp.certificate import generate_self_signed


def write_self_signed_cert(cert_file: Path, key_file: Path) -> None:
    """An EC P-256 certificate for 127.0.0.1/localhost, marked CA so that it can also serve as
    its own trust anchor in tests that verify; the key is written 0600."""
    generate_self_signed(cert_file, key_file, "127.0.0.1")
