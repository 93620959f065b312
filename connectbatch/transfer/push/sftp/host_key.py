"""The hosted SFTP server's host key: generated on first start, kept, reused.

Partners pin it, so it must survive restarts: Ed25519 written in OpenSSH format with
`cryptography` (paramiko reads but cannot write it), RSA 3072 if that fails; the file is 0600.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

import paramiko

log = logging.getLogger("connectbatch.transfer.push.sftp")


HOST_KEY_FILE = "ssh_host_key"


def host_key_path(home: Path) -> Path:
    """Where the hosted SFTP server of the data directory `home` keeps its host key."""
    return Path(home) / HOST_KEY_FILE


def host_key_fingerprint(path: Path) -> str:
    """The SHA256 fingerprint (as `ssh-keygen -l` prints it) of the host key at `path`,
    creating the key if there is none yet: a provisioned login shows it for the partner to
    pin even before the server first starts."""
    from connectbatch.transfer.pull.sftp import fingerprint

    return fingerprint(load_or_create_host_key(path).asbytes())


def load_or_create_host_key(path: Path) -> paramiko.PKey:
    """The server's host key from `path`, created there on first use.

    Kept across restarts because partners pin it: a new key would make their clients refuse
    us. Ed25519 (small, fast, every current client supports it) is written by `cryptography` in
    OpenSSH format, since paramiko can read but not write Ed25519 keys; RSA 3072 if that fails.
    The file is created 0600 and tightened to 0600 if someone loosened it."""
    path = Path(path)
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("host key %s was readable by others (mode %o): setting it to 0600", path, mode)
            path.chmod(0o600)
        return _read_host_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        _write_private(path, pem)
        return _read_host_key(path)
    except Exception:  # an old cryptography or paramiko without Ed25519: RSA works everywhere
        log.warning("could not create an Ed25519 host key; using RSA 3072", exc_info=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        rsa = paramiko.RSAKey.generate(3072)
        temporary = path.with_name(path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(descriptor)
        rsa.write_private_key_file(str(temporary))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        return rsa


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically: never world-readable, never half-written."""
    temporary = path.with_name(path.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def _read_host_key(path: Path) -> paramiko.PKey:
    text = path.read_text()
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind(filename=str(path))
        except (paramiko.SSHException, ValueError):
            continue
    raise paramiko.SSHException(f"{path} does not hold a private key paramiko can read ({text[:35]!r})")
