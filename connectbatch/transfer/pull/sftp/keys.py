"""SSH keys for SFTP pulls: the server's host key (pinning, fingerprints) and the private key
a connection logs in with.

Host keys are pinned as "<type> <base64>" (a known_hosts line without its host field) and shown
as OpenSSH's SHA256 fingerprint; private keys are read with cryptography, not paramiko (see
`load_private_key` for why), and wrapped in paramiko's key classes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import re
import struct
import textwrap

import paramiko

from connectbatch.errors import TransportError

log = logging.getLogger("connectbatch.transfer.pull.sftp")

# Host key type (as in "<type> <base64>") -> the algorithms that present such a key.
HOST_KEY_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}


class HostKeyChangedError(TransportError):
    """The server presented a different host key than the one pinned for this connection.

    Never resolved automatically: the server may have been reinstalled, or someone may be
    intercepting the connection. `presented_key` lets the UI show the new key for a person to
    accept (store it as the connection's pinned key)."""

    def __init__(
        self,
        message: str,
        *,
        expected_fingerprint: str,
        presented_fingerprint: str,
        presented_key: str,
    ) -> None:
        super().__init__(message)
        self.expected_fingerprint = expected_fingerprint
        self.presented_fingerprint = presented_fingerprint
        self.presented_key = presented_key


# --- host keys -----------------------------------------------------------------------------------


def fingerprint(key_blob: bytes) -> str:
    """The SHA256 fingerprint exactly as OpenSSH prints it (`ssh-keygen -lf`, first-connection
    prompts), so a person can compare it with what the partner reads out to them."""
    digest = base64.b64encode(hashlib.sha256(key_blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


def parse_host_key(text: str) -> tuple[str, bytes]:
    """A pinned key as "<type> <base64>" -> (type, key blob). A comment after it, or a
    known_hosts host field before it, is tolerated; the blob must declare the same type."""
    words = text.split()
    for index, word in enumerate(words[:-1]):
        if word in HOST_KEY_ALGORITHMS or word.startswith(("ssh-", "ecdsa-", "sk-")):
            key_type, encoded = word, words[index + 1]
            break
    else:
        raise TransportError(
            f"the pinned host key {text[:40]!r} is not in the form '<key type> <base64>' "
            "(as in a known_hosts line, e.g. 'ssh-ed25519 AAAAC3Nz...')"
        )
    try:
        blob = base64.b64decode(encoded, validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        declared = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError) as exc:
        raise TransportError(f"the pinned {key_type} host key is not valid base64 key data") from exc
    if declared != key_type:
        raise TransportError(f"the pinned host key says {key_type} but its data is a {declared} key")
    return key_type, blob


def check_host_key(
    key: paramiko.PKey,
    *,
    pinned: tuple[str, bytes] | None,
    given_fingerprint: str | None,
    where: str,
) -> tuple[str, str]:
    """The server's key as ("<type> <base64>", fingerprint) when it may be trusted: it is the
    pinned key, or nothing is pinned yet (first use, optionally checked against a fingerprint
    the partner gave in advance). Otherwise `HostKeyChangedError`, before any credential is
    sent."""
    blob = key.asbytes()
    host_key = f"{key.get_name()} {base64.b64encode(blob).decode('ascii')}"
    presented = fingerprint(blob)
    if pinned is None and given_fingerprint is not None and given_fingerprint != presented:
        raise HostKeyChangedError(
            f"the host key of {where} is not the one given in advance: expected {given_fingerprint}, "
            f"but the server presented {key.get_name()} {presented}. Nothing "
            "was sent to it. Check the fingerprint with the partner.",
            expected_fingerprint=given_fingerprint,
            presented_fingerprint=presented,
            presented_key=host_key,
        )
    if pinned is None:
        log.info("first connection to %s: accepting %s host key %s", where, key.get_name(), presented)
        return host_key, presented
    pinned_type, pinned_blob = pinned
    if blob == pinned_blob:
        return host_key, presented
    expected = fingerprint(pinned_blob)
    raise HostKeyChangedError(
        f"the host key of {where} has changed: expected {pinned_type} {expected}, "
        f"but the server presented {key.get_name()} {presented}. "
        "The server may have been reinstalled, or someone may be intercepting the "
        "connection; nothing was sent to it. A person must check the new key with the "
        "partner and accept it before pulls from this server resume.",
        expected_fingerprint=expected,
        presented_fingerprint=presented,
        presented_key=host_key,
    )


# --- private keys --------------------------------------------------------------------------------

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_OPENSSH_MAGIC = b"openssh-key-v1\x00"
_SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # what SSH calls nistp256/384/521
_NEEDS_PASSPHRASE = "the private key is protected by a passphrase: enter the passphrase with the key"
_WRONG_PASSPHRASE = "the private key could not be decrypted: the passphrase is wrong"
_UNSUPPORTED = "unsupported private key type (supported: Ed25519, ECDSA, RSA)"


def _normalise_key_text(text: str) -> str:
    """Undo what copy and paste does to key text: CRLF, escaped "\\n", a key squashed onto one
    line by a single-line input (body re-wrapped at 70 columns, which every parser accepts)."""
    text = text.strip().replace("\r\n", "\n").replace("\r", "\n")
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    match = _PEM_BLOCK.search(text)
    if match and "\n" not in match.group(2).strip() and ":" not in match.group(2):
        body = "".join(match.group(2).split())
        text = (
            f"-----BEGIN {match.group(1)}-----\n"
            + "\n".join(textwrap.wrap(body, 70))
            + f"\n-----END {match.group(1)}-----"
        )
    return text + "\n"


def _openssh_key_info(body: str) -> tuple[str, bool]:
    """(key type, encrypted?) of an OpenSSH-format key without decrypting it: the format keeps
    the public key and the cipher name in the clear."""
    data = base64.b64decode("".join(body.split()))
    if not data.startswith(_OPENSSH_MAGIC):
        raise ValueError("not an OpenSSH private key")
    offset = len(_OPENSSH_MAGIC)
    fields: list[bytes] = []
    for _ in range(3):  # cipher name, kdf name, kdf options
        (length,) = struct.unpack_from(">I", data, offset)
        fields.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    offset += 8  # number of keys, length of the public key blob
    (type_length,) = struct.unpack_from(">I", data, offset)
    key_type = data[offset + 4 : offset + 4 + type_length].decode("ascii")
    return key_type, fields[0] != b"none"


def _check_key_type(key_type: str) -> None:
    if key_type == "ssh-dss":
        raise TransportError(
            "DSA private keys are not supported (OpenSSH has dropped them too): "
            "use an Ed25519, ECDSA or RSA key"
        )
    if key_type.startswith("sk-"):
        raise TransportError(
            "hardware security-key (FIDO, sk-...) private keys cannot be used for unattended "
            "pulls: use an Ed25519, ECDSA or RSA key"
        )
    if key_type not in ("ssh-ed25519", "ssh-rsa") and not key_type.startswith("ecdsa-sha2-"):
        raise TransportError(f"unsupported private key type {key_type!r}")


def load_private_key(text: str, passphrase: str | None = None) -> paramiko.PKey:
    """Private key text (OpenSSH new format, legacy PEM "BEGIN RSA/EC PRIVATE KEY", or PKCS#8),
    optionally passphrase-protected -> the matching paramiko key (RSAKey, ECDSAKey, Ed25519Key).

    Why cryptography decrypts and paramiko only wraps the result: paramiko's own OpenSSH-format
    reader throws the key away when the key block needs no padding and ends in a zero byte
    (an RSA or ECDSA key with an empty comment, one in eight of them), reports that as "Invalid
    key curve identifier", and cannot tell a wrong passphrase from a wrong key type.
    cryptography reads every format here, decrypts once (bcrypt rounds cost ~0.1 s), and says
    whether the passphrase was missing or wrong. Whether a key is encrypted, and the type of
    an OpenSSH key, are read from the key's clear-text header first, so the messages are exact.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if "PuTTY-User-Key-File" in text:
        raise TransportError(
            "PuTTY .ppk keys are not supported: convert it to OpenSSH format "
            "(PuTTYgen: Conversions > Export OpenSSH key, or "
            "`puttygen key.ppk -O private-openssh -o key`)"
        )
    text = _normalise_key_text(text)
    match = _PEM_BLOCK.search(text)
    if match is None:
        raise TransportError(
            "the private key is not in a recognised format: expected text starting with "
            "'-----BEGIN OPENSSH PRIVATE KEY-----' (or RSA / EC / PRIVATE KEY)"
        )
    label, body = match.group(1), match.group(2)
    if label == "OPENSSH PRIVATE KEY":
        try:
            key_type, encrypted = _openssh_key_info(body)
        except (ValueError, struct.error, binascii.Error, UnicodeDecodeError) as exc:
            raise TransportError("the OpenSSH private key is damaged (cannot be decoded)") from exc
        _check_key_type(key_type)
    elif label == "DSA PRIVATE KEY":
        _check_key_type("ssh-dss")
    elif label in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        encrypted = label == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in body
    else:
        raise TransportError(f"unsupported private key format ({label})")
    if encrypted and not passphrase:
        raise TransportError(_NEEDS_PASSPHRASE)

    block = match.group(0).encode("ascii", "replace")
    password = passphrase.encode("utf-8") if encrypted and passphrase else None
    key: object
    try:
        if label == "OPENSSH PRIVATE KEY":
            key = serialization.load_ssh_private_key(block, password)
        else:
            key = serialization.load_pem_private_key(block, password)
    except UnsupportedAlgorithm as exc:
        raise TransportError(_UNSUPPORTED) from exc
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise TransportError(_WRONG_PASSPHRASE) from exc
        raise TransportError("the private key could not be read: it is damaged") from exc
    return _paramiko_key(key)


def _paramiko_key(key: object) -> paramiko.PKey:
    """Wrap a cryptography private key in paramiko's class for its type."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return paramiko.RSAKey(key=key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _SUPPORTED_CURVES:
            raise TransportError(
                f"ECDSA keys on curve {key.curve.name} are not supported by SSH servers "
                "(use nistp256, nistp384 or nistp521)"
            )
        return paramiko.ECDSAKey(vals=(key, key.public_key()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        # paramiko's Ed25519Key takes no key object; hand it the OpenSSH text it reads
        # (unencrypted, in memory only). An Ed25519 block always needs padding, so the
        # reader's padding bug cannot bite here.
        text = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode("ascii")
        return paramiko.Ed25519Key.from_private_key(io.StringIO(text))
    if isinstance(key, dsa.DSAPrivateKey):
        _check_key_type("ssh-dss")
    raise TransportError(_UNSUPPORTED)
