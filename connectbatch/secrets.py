"""Secrets at rest: encryption of third-party credentials, hashing of the logins we provision.

- Credentials we use to log in elsewhere (pull methodology) must be readable again, so they
  are encrypted with Fernet (AES-128-CBC + HMAC) under a key kept outside the database:
  `CONNECTBATCH_SECRET_KEY`, else `<home>/secret.key` created with mode 0600.
- Passwords we only need to check (app users', and the logins we provision for partners'
  push connections, shown once at creation and never again) are stored as Argon2id hashes at
  OWASP's minimum (19 MiB, 2 passes, 1 lane: ~25 ms here), in the PHC string format that
  names its parameters (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Hashes stored before
  (`scrypt$<salt>$<digest>`, N=2^14, r=8, p=1: twice the time, weaker against GPUs) still
  verify; `needs_rehash` tells the app's login to store an Argon2id hash instead.
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

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from connectbatch.errors import ConfigurationError

_HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_LEGACY_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # `scrypt$salt$digest`, before Argon2id
# A stored hash asking more than this is refused rather than computed: a tampered row must
# not make a login allocate gigabytes or run for minutes.
_MOST_MEMORY_KIB, _MOST_PASSES, _MOST_LANES = 1024 * 1024, 16, 16


class SecretBox:
    """Encrypts and decrypts credential secrets with the installation's key."""

    def __init__(self, key: bytes, source: str = "the secret key") -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{source} is not a valid Fernet key") from exc

    @classmethod
    def for_home(cls, home: Path, key: str | None = None) -> SecretBox:
        """`key` (Settings.secret_key, CONNECTBATCH_SECRET_KEY) when given, else the key file
        under `home`, created on first use. A key that cannot be used names where it came from
        (the variable or the file): the operator has two places to look."""
        if key:
            return cls(key.encode(), "CONNECTBATCH_SECRET_KEY")
        path = home / "secret.key"
        try:
            if not path.exists():
                home.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(Fernet.generate_key())
            raw = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigurationError(
                f"the secret key file {path} cannot be read: {exc.strerror or exc} "
                "(or set CONNECTBATCH_SECRET_KEY)"
            ) from None
        return cls(raw, f"the secret key file {path}")

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
    return _HASHER.hash(password)


def _argon2_bounded(stored: str) -> bool:
    try:
        found = argon2.extract_parameters(stored)
    except InvalidHashError:
        return False
    return (
        found.memory_cost <= _MOST_MEMORY_KIB
        and found.time_cost <= _MOST_PASSES
        and found.parallelism <= _MOST_LANES
    )


def _check_legacy(password: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 3:
        return False
    try:
        salt, digest = (base64.b64decode(part, validate=True) for part in parts[1:])
    except ValueError:
        return False
    computed = hashlib.scrypt(password.encode(), salt=salt, **_LEGACY_SCRYPT)
    return hmac.compare_digest(computed, digest)


def _scheme(stored: str | None) -> str | None:
    """The scheme of a stored hash: scrypt (from before), argon2 (within the bounds), or None
    for anything we do not check."""
    if not stored:
        return None
    if stored.startswith("scrypt$"):
        return "scrypt"
    return "argon2" if stored.startswith("$argon2") and _argon2_bounded(stored) else None


def check_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored` (Argon2id, or scrypt from before). A stored value
    that is no hash we know matches nothing."""
    scheme = _scheme(stored)
    if scheme == "scrypt":
        return _check_legacy(password, str(stored))
    if scheme is None:
        return False
    try:
        return _HASHER.verify(str(stored), password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str | None) -> bool:
    """Whether `stored` is a hash we still check but would not write today (scrypt from
    before, or Argon2id with other parameters): the login that just proved the password
    stores a new hash."""
    scheme = _scheme(stored)
    return scheme == "scrypt" or (scheme == "argon2" and _HASHER.check_needs_rehash(str(stored)))


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
