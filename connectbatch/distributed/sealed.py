"""Task payloads sealed with the key coordinator and workers share (connectbatch/secrets.py).

A task carries the connection and its login (password, private key) to a worker through
Redis. Redis must never hold a secret in clear, so the whole payload travels as one Fernet
token inside Celery's JSON message. Fernet authenticates as well as encrypts: a worker
unpickles only what a holder of the key sealed, never bytes someone else put in Redis.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

from connectbatch.secrets import SecretBox


def seal(box: SecretBox, payload: dict[str, Any]) -> str:
    """The payload as an authenticated, encrypted text token."""
    raw = base64.b64encode(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")
    return box.encrypt(raw).decode("ascii")


def unseal(box: SecretBox, token: str) -> dict[str, Any]:
    """The payload `seal` made (ConfigurationError when the key differs)."""
    raw = box.decrypt(token.encode("ascii"))
    payload = pickle.loads(base64.b64decode(raw))
    if not isinstance(payload, dict):
        raise TypeError("a sealed task payload is a dict")
    return payload
