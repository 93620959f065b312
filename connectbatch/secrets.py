"""Secrets at rest: encryption of third-party credentials, hashing of the logins we provision.

- Credentials we use to log in elsewhere (pull methodology) must be readable again, so they
  are encrypted with Fernet (AES-128-CBC + HMAC) under a key kept outside the database:
  `CONNECTBATCH_SECRET_KEY`, else `<home>/secret.key` created with mode 0600.
- Passwords we only need to check (app users', and the logins we provision for partners'
  push connections, shown once at creation and never again) are stored as scrypt hashes
  that name their cost: `scrypt$ln=14,r=8,p=5$<salt>$<digest>`. Passwords people choose get
  OWASP's minimum (N=2^14, r=8, p=5: ~0.2 s, 16 MiB); generated logins (24 random characters,
  ~139 bits) get a fifth of that work, which is already more than guessing them could use.
  Hashes from before the cost was named (`scrypt$<salt>$<digest>`, N=2^14, r=8, p=1) still
  verify; `needs_rehash` tells the login to store a stronger one.
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
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from connectbatch.errors import ConfigurationError


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's work factors: N = 2**log_n, block size r, parallelism p."""

    log_n: int
    r: int
    p: int

    def text(self) -> str:
        return f"ln={self.log_n},r={self.r},p={self.p}"

    @classmethod
    def parse(cls, text: str) -> ScryptCost | None:
        """The cost a stored hash names, or None when it is not one we would compute: the
        bounds keep a tampered row from asking for gigabytes or minutes."""
        match = re.fullmatch(r"ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})", text)
        if not match:
            return None
        cost = cls(*(int(group) for group in match.groups()))
        if not (10 <= cost.log_n <= 20 and 1 <= cost.r <= 32 and 1 <= cost.p <= 16):
            return None
        return cost

    def digest(self, password: str, salt: bytes) -> bytes:
        memory = 128 * self.r * (2**self.log_n + self.p + 2)  # what OpenSSL checks against
        return hashlib.scrypt(
            password.encode(),
            salt=salt,
            n=2**self.log_n,
            r=self.r,
            p=self.p,
            maxmem=memory + (1 << 20),
        )


PASSWORD_COST = ScryptCost(log_n=14, r=8, p=5)
"""Passwords people choose (app users): OWASP's scrypt minimum."""
GENERATED_COST = ScryptCost(log_n=14, r=8, p=1)
"""Passwords we generate (push logins, ~139 bits): more work would protect nothing."""
_LEGACY_COST = ScryptCost(log_n=14, r=8, p=1)  # `scrypt$salt$digest`, before costs were named


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


def hash_password(password: str, cost: ScryptCost = PASSWORD_COST) -> str:
    salt = pysecrets.token_bytes(16)
    digest = cost.digest(password, salt)
    return "$".join(
        ("scrypt", cost.text(), base64.b64encode(salt).decode(), base64.b64encode(digest).decode())
    )


def _parse_hash(stored: str | None) -> tuple[ScryptCost, bytes, bytes] | None:
    """(cost, salt, digest) of a stored hash, or None when it is none we can check."""
    parts = (stored or "").split("$")
    if parts[0] != "scrypt" or len(parts) not in (3, 4):
        return None
    cost = _LEGACY_COST if len(parts) == 3 else ScryptCost.parse(parts[1])
    if cost is None:
        return None
    try:
        salt, digest = (base64.b64decode(part, validate=True) for part in parts[-2:])
    except ValueError:
        return None
    return cost, salt, digest


def check_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored`, at the cost `stored` names. A stored value that
    is no hash we know matches nothing."""
    parsed = _parse_hash(stored)
    if parsed is None:
        return False
    cost, salt, digest = parsed
    return hmac.compare_digest(cost.digest(password, salt), digest)


def needs_rehash(stored: str | None, cost: ScryptCost = PASSWORD_COST) -> bool:
    """Whether `stored` was computed at another cost than `cost` (a hash from before the cost
    was raised): the login that just proved the password stores a new hash."""
    parsed = _parse_hash(stored)
    return parsed is not None and parsed[0] != cost


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
