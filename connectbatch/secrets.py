"""Secrets at rest: encryption of third-party credentials, hashing of the logins we provision.

- Credentials we use to log in elsewhere (pull methodology) must be readable again, so they
  are encrypted with Fernet (AES-128-CBC + HMAC) under a key kept outside the database:
  `CONNECTBATCH_SECRET_KEY`, else `<home>/secret.key` created with mode 0600.
- Logins we provision for partners (push methodology) only need checking, so only an
  scrypt hash is stored; the password is shown once at creation and never again.
Nothing here logs a secret; `redact()` is what error paths use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets as pysecrets
import string
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from connectbatch.errors import ConfigurationError

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class SecretBox:
    """Encrypts and decrypts credential secrets with the installation's key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError("the secret key is not a valid Fernet key") from exc

    @classmethod
    def for_home(cls, home: Path, key: str | None = None) -> SecretBox:
        """`key` (Settings.secret_key, CONNECTBATCH_SECRET_KEY) when given, else the key file
        under `home`, created on first use."""
        if key:
            return cls(key.encode())
        path = home / "secret.key"
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise ConfigurationError(
                "a stored credential cannot be decrypted: the secret key changed; re-enter it"
            ) from None


def hash_password(password: str) -> str:
    salt = pysecrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_b64, digest_b64 = stored.split("$", 2)
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def new_password(length: int = 24) -> str:
    """A strong random password without characters people misread or shells mangle."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "lI1O0o")
    return "".join(pysecrets.choice(alphabet) for _ in range(length))


def new_username(connection_name: str) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in connection_name.lower()).strip("_")[:20]
    return f"cb_{slug or 'conn'}_{pysecrets.token_hex(3)}"


def redact(text: str, *secret_values: str | None) -> str:
    """`text` with each secret replaced by ***, for messages built from server replies.

    A very short secret is replaced only where it stands alone, so that a password like "p"
    does not turn every "p" of the message into ***."""
    for secret in secret_values:
        if not secret:
            continue
        if len(secret) >= 4:
            text = text.replace(secret, "***")
        else:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text
