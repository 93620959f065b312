"""Users of the app: add, list, disable, and log in (authenticate) with throttling.

Logging in costs one password-hash check whatever happens: an unknown name is checked against a
dummy hash, so the time taken does not tell whether a name exists. After
`FAILURES_ALLOWED` failed logins in a row for one name, that name is refused without a
password check for a delay that doubles with each further failure (`lockout`); unknown names
are throttled the same way (in memory), so throttling does not reveal names either.
A login that proves a password stored with an older hash (scrypt, before Argon2id) stores it
again with today's (`secrets.needs_rehash`), so every active user moves without a reset.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading

from connectbatch.errors import ConnectBatchError
from connectbatch.models import Role, User
from connectbatch.secrets import check_password, hash_password, needs_rehash
from connectbatch.services.base import InvalidInputError, NotFoundError, ServiceBase, _enum, requires
from connectbatch.store import sessions as session_store
from connectbatch.store import users as user_store

FAILURES_ALLOWED = 5
FIRST_DELAY = dt.timedelta(seconds=30)
LONGEST_DELAY = dt.timedelta(minutes=15)
MIN_PASSWORD = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# Checked when the name is unknown, so that a login costs the same either way.
_DUMMY_HASH = hash_password("connectbatch: no such user")


class AuthenticationError(ConnectBatchError, PermissionError):
    """A login that did not succeed: wrong name or password, disabled, or throttled."""


class _UnknownNames:
    """Failed logins of names that are no user, per database, kept in this process only."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], tuple[int, dt.datetime]] = {}

    def get(self, key: tuple[str, str]) -> tuple[int, dt.datetime | None]:
        with self._lock:
            return self._failures.get(key, (0, None))

    def fail(self, key: tuple[str, str], now: dt.datetime) -> None:
        with self._lock:
            if len(self._failures) >= self.LIMIT:  # bounded: the oldest entry goes
                self._failures.pop(next(iter(self._failures)))
            count, _ = self._failures.pop(key, (0, None))
            self._failures[key] = (count + 1, now)


_UNKNOWN = _UnknownNames()


def lockout(failures: int) -> dt.timedelta:
    """How long a name is refused after `failures` failed logins in a row."""
    if failures < FAILURES_ALLOWED:
        return dt.timedelta(0)
    delay: dt.timedelta = FIRST_DELAY * 2 ** min(failures - FAILURES_ALLOWED, 20)
    return min(delay, LONGEST_DELAY)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class UserServices(ServiceBase):
    @requires(Role.ADMIN)
    def add_user(self, name: str, role: Role | str, password: str) -> User:
        name = (name or "").strip()
        if not _NAME.fullmatch(name):
            raise InvalidInputError(
                "name", "use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
            )
        checked: Role = _enum(Role, role, "role")
        if len(password or "") < MIN_PASSWORD:
            raise InvalidInputError("password", f"must have at least {MIN_PASSWORD} characters")
        with self.db.transaction() as con:
            if user_store.get(con, name) is not None:
                raise InvalidInputError("name", f"a user named {name!r} already exists")
            return user_store.add(con, name, checked, hash_password(password))

    @requires(Role.ADMIN)
    def users(self) -> list[User]:
        with self.db.connect() as con:
            return user_store.list_all(con)

    @requires(Role.ADMIN)
    def disable_user(self, name: str) -> User:
        with self.db.transaction() as con:
            if user_store.get(con, name) is None:
                raise NotFoundError(f"there is no user named {name!r}")
            user_store.set_disabled(con, name, True)
            session_store.remove_of_user(con, name)  # logged out in every browser
            found = user_store.get(con, name)
        assert found is not None
        return found

    @requires(Role.ADMIN)
    def set_user_password(self, name: str, password: str) -> User:
        """A forgotten password (the demo's are printed once): set a new one, which also
        enables the user again and clears the failed logins held against them."""
        if len(password or "") < MIN_PASSWORD:
            raise InvalidInputError("password", f"must have at least {MIN_PASSWORD} characters")
        with self.db.transaction() as con:
            if user_store.get(con, name) is None:
                raise NotFoundError(f"there is no user named {name!r}")
            user_store.set_password(con, name, hash_password(password))
            session_store.remove_of_user(con, name)  # a browser with the old login is logged out
            found = user_store.get(con, name)
        assert found is not None
        return found

    def current_user(self, name: str) -> User | None:
        """The user as stored now (the app re-reads it on every page view, so a disabled user
        or a changed role takes effect at once); None when there is no such user."""
        with self.db.connect() as con:
            return user_store.get(con, name)

    def authenticate(self, name: str, password: str) -> User:
        """The user with this name and password, or AuthenticationError. Open to everyone:
        it is the login."""
        name = (name or "").strip()
        now = self.clock()
        with self.db.connect() as con:
            found = user_store.with_hash(con, name) if name else None
        key = (str(self.settings.database), name)
        if found is None:
            failures, last = _UNKNOWN.get(key)
        else:
            failures, last = found[0].failed_logins, found[0].last_failed_at
        if last is not None and now < _aware(last) + lockout(failures):
            wait = math.ceil((_aware(last) + lockout(failures) - now).total_seconds())
            raise AuthenticationError(f"too many failed logins for {name!r}: try again in {wait} seconds")
        stored = found[1] if found else _DUMMY_HASH
        ok = check_password(password or "", stored)
        outdated = needs_rehash(stored)
        if found is None or not ok:
            if found is None:
                _UNKNOWN.fail(key, now)
            # For an unknown name the same UPDATE changes no row: it costs the same time.
            with self.db.connect() as con:
                user_store.record_failure(con, name, now)
            raise AuthenticationError("wrong name or password")
        user = found[0]
        if user.disabled:
            raise AuthenticationError(f"the user {name!r} is disabled: ask an admin")
        if user.failed_logins:
            with self.db.connect() as con:
                user_store.clear_failures(con, name)
        if outdated:
            with self.db.connect() as con:
                user_store.replace_hash(con, name, stored, hash_password(password))
        return user
