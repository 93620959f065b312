"""Task payloads sealed with the key coordinator and workers share (connectbatch/secrets.py).

A task carries the connection and its login (password, private key) to a worker through
Redis. Redis must never hold a secret in clear, so the whole payload travels as one Fernet
token inside Celery's JSON message. Fernet authenticates as well as encrypts: a worker
unpickles only what a holder of the key sealed, never bytes someone else put in Redis. And
should the key ever leak, the unpickler still builds only ConnectBatch's own data classes and
the standard value types they hold (`_Restricted`), never an arbitrary callable.
"""

from __future__ import annotations

import base64
import enum
import io
import pickle
import socket
import zoneinfo
from typing import Any

from connectbatch import release
from connectbatch.errors import ConfigurationError
from connectbatch.secrets import SecretBox

_RELEASE = "_release"  # the sealing process's `release.fingerprint`, checked by `unseal`


def seal(box: SecretBox, payload: dict[str, Any]) -> str:
    """The payload as an authenticated, encrypted text token, stamped with this process's
    code fingerprint."""
    stamped = {**payload, _RELEASE: release.fingerprint()}
    raw = base64.b64encode(pickle.dumps(stamped, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")
    return box.encrypt(raw).decode("ascii")


# Modules whose classes a payload may hold, besides connectbatch's own.
_ALLOWED_MODULES = frozenset({"datetime", "decimal", "pathlib", "uuid", "zoneinfo"})


def _enum_member(cls: Any, name: str) -> Any:
    """What `getattr` does when an enum member or a time zone is unpickled (Python 3.11
    pickles members by name, and ZoneInfo through its `_unpickle`, with getattr), and
    nothing else: a general getattr would reach any global."""
    if isinstance(cls, type) and issubclass(cls, enum.Enum) and name in cls.__members__:
        return cls[name]
    if cls is zoneinfo.ZoneInfo and name == "_unpickle":
        return zoneinfo.ZoneInfo._unpickle  # type: ignore[attr-defined]
    raise pickle.UnpicklingError(f"a task payload may not look up {name!r}")


class _Restricted(pickle.Unpickler):
    """An unpickler that builds only ConnectBatch's classes, plain value types and enum
    members: never a module, a function or any other callable."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("builtins", "getattr"):
            return _enum_member
        if module == "connectbatch" or module.startswith("connectbatch.") or module in _ALLOWED_MODULES:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"a task payload may not hold {module}.{name}")


def unseal(box: SecretBox, token: str) -> dict[str, Any]:
    """The payload `seal` made. ConfigurationError when the key differs or the token was
    altered (Fernet cannot tell the two apart), or when the sealing process ran other code
    (`release`)."""
    try:
        raw = box.decrypt(token.encode("ascii"))
    except ConfigurationError:  # the box's own words ("re-enter it") are about stored logins
        raise ConfigurationError(
            f"the worker on {socket.gethostname()} cannot open the task: its secret key "
            "(CONNECTBATCH_SECRET_KEY, else secret.key in its CONNECTBATCH_HOME) is not the "
            "coordinator's, or the task was altered in Redis; give every worker the "
            "coordinator's key (and check who can write to Redis), then retry the run"
        ) from None
    payload = _Restricted(io.BytesIO(base64.b64decode(raw))).load()
    if not isinstance(payload, dict):
        raise TypeError("a sealed task payload is a dict")
    theirs, ours = payload.pop(_RELEASE, None), release.fingerprint()
    if theirs != ours:
        raise ConfigurationError(
            f"the worker on {socket.gethostname()} runs other ConnectBatch code (fingerprint "
            f"{ours}) than the coordinator that sent the task ({theirs or 'none'}): its parse "
            "could differ from the coordinator's; run one release everywhere, then retry the run"
        )
    return payload
