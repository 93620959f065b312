"""Users of the app: add, list, disable, and log in (authenticate) with throttling.

Logging in costs one password-hash check whatever happens: an unknown name is checked against a
dummy hash, so the time taken does not tell whether a name exists. Failed logins are throttled
twice, and unknown names exactly as known ones (in memory), so throttling does not reveal names:

* **Per name and client** (the browser's address): after `FAILURES_ALLOWED` failures in a row
  from one client, that client is refused for that name without a password check for a delay
  that doubles with each further failure (`lockout`), up to `LONGEST_DELAY`. Only that client:
  a stranger who knows an analyst's login name and fails a login every few minutes no longer
  locks the analyst out (it did when this count was per name alone, 2026-12-07). A success
  clears the count of that client for that name only.
* **Per name, across clients** (`name_wait`): the ceiling against guessing one name from many
  addresses, much looser; see `NAME_FAILURES_ALLOWED` for why its numbers are what they are.

Without an address (Streamlit gives none for localhost, AppTest, or a proxy on the same host)
all logins of a name share one client, as before there were addresses. IPv6 addresses count per
/64: one host commonly holds a whole /64, which would otherwise be 2**64 clients.
The per-client counts live in this process (bounded, `_Failures`); a restart forgets them, the
name-wide count of a user is in the users table and is not forgotten.
A login that proves a password stored with an older hash (scrypt, before Argon2id) stores it
again with today's (`secrets.needs_rehash`), so every active user moves without a reset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
import re
import threading
from collections.abc import Callable

from connectbatch.errors import ConnectBatchError
from connectbatch.models import Role, User
from connectbatch.secrets import check_password, hash_password, needs_rehash
from connectbatch.services.base import InvalidInputError, NotFoundError, ServiceBase, _enum, requires
from connectbatch.store import sessions as session_store
from connectbatch.store import users as user_store

FAILURES_ALLOWED = 5  # per name and client
FIRST_DELAY = dt.timedelta(seconds=30)
LONGEST_DELAY = dt.timedelta(minutes=15)
# The name-wide ceiling. A client alone, throttled as above, fails at most FAILURES_ALLOWED
# times at once, then after 30 s, 1, 2, 4 and 8 minutes, then once per LONGEST_DELAY (4 an
# hour). A name forgets one failure per NAME_LEAK (30 an hour), so one client alone never
# holds a name's count above about FAILURES_ALLOWED + 3 (7), far below 50: it cannot lock
# the user out, however long it goes on. Refusing everyone takes seven or more clients
# failing together (50 / 7), and keeping that up eight or more (30 an hour / 4 each). A
# guesser with that many addresses still gets at most 50 guesses, then one per NAME_LEAK
# (about 770 a day) at a name, against passwords of MIN_PASSWORD characters or more.
NAME_FAILURES_ALLOWED = 50
NAME_LEAK = dt.timedelta(minutes=2)
MIN_PASSWORD = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_NO_ADDRESS = ""  # the one client of every login without an address
# Checked when the name is unknown, so that a login costs the same either way.
_DUMMY_HASH = hash_password("connectbatch: no such user")


class AuthenticationError(ConnectBatchError, PermissionError):
    """A login that did not succeed: wrong name or password, disabled, or throttled."""


Key = tuple[str, ...]


class _Failures:
    """Failed logins kept in this process only: a count and the last failure per key, at most
    LIMIT keys, so that failing with ever new names or addresses cannot fill the memory. When
    full, the oldest of the counts below `heavy` goes first: forgetting one costs little (a few
    more free tries), while a flood of fresh names would otherwise push out the count that
    throttles a guesser. Keys hold a digest of the name, never the name as typed (any length)."""

    LIMIT = 10_000

    def __init__(self, heavy: int) -> None:
        self._heavy_from = heavy
        self._lock = threading.Lock()
        self._light: dict[Key, tuple[int, dt.datetime]] = {}  # oldest failure first
        self._heavy: dict[Key, tuple[int, dt.datetime]] = {}

    def __len__(self) -> int:
        return len(self._light) + len(self._heavy)

    def held(self) -> list[Key]:
        with self._lock:
            return [*self._light, *self._heavy]

    def get(self, key: Key) -> tuple[int, dt.datetime | None]:
        with self._lock:
            return self._light.get(key) or self._heavy.get(key) or (0, None)

    def fail(self, key: Key, now: dt.datetime, counted: Callable[[int, dt.datetime | None], int]) -> None:
        """One more failure: the count becomes `counted(count, last failure)` (under the lock,
        so that failures at the same time are all counted)."""
        with self._lock:
            count, last = self._light.pop(key, None) or self._heavy.pop(key, None) or (0, None)
            while len(self) >= self.LIMIT:
                table = self._light or self._heavy
                table.pop(next(iter(table)))
            count = counted(count, last)
            (self._heavy if count >= self._heavy_from else self._light)[key] = (count, now)

    def forget(self, key: Key) -> None:
        with self._lock:
            self._light.pop(key, None)
            self._heavy.pop(key, None)

    def forget_name(self, database: str, name: str) -> None:
        """Every client's failures for the name (an admin set a new password)."""
        prefix = (database, _digest(name))
        with self._lock:
            for table in (self._light, self._heavy):
                for key in [k for k in table if k[:2] == prefix]:
                    del table[key]


_CLIENTS = _Failures(FAILURES_ALLOWED)  # per (database, name, client), users and not alike
_UNKNOWN = _Failures(FAILURES_ALLOWED)  # per (database, name): the name-wide count of non-users


def lockout(failures: int) -> dt.timedelta:
    """How long a client is refused for a name after `failures` failed logins in a row."""
    if failures < FAILURES_ALLOWED:
        return dt.timedelta(0)
    delay: dt.timedelta = FIRST_DELAY * 2 ** min(failures - FAILURES_ALLOWED, 20)
    return min(delay, LONGEST_DELAY)


def name_level(failures: int, last: dt.datetime | None, now: dt.datetime) -> int:
    """The name-wide count now: `failures` as of the `last` failure, less one per NAME_LEAK
    since (whole steps only: what is left of a step is not carried, which errs on the strict
    side). Computed the same way by `user_store.record_failure` in SQL."""
    if last is None:
        return 0
    return max(failures - max(now - _aware(last), dt.timedelta(0)) // NAME_LEAK, 0)


def name_wait(failures: int, last: dt.datetime | None, now: dt.datetime) -> dt.timedelta:
    """How long every client is refused for a name whose count is at the ceiling: until it has
    forgotten enough failures to be below it again."""
    if last is None or name_level(failures, last, now) < NAME_FAILURES_ALLOWED:
        return dt.timedelta(0)
    return _aware(last) + NAME_LEAK * (failures - NAME_FAILURES_ALLOWED + 1) - now


def client_of(address: str | None) -> str:
    """The client a browser's address counts as: the address itself (IPv4-mapped IPv6 as
    IPv4), an IPv6 address's /64, or `_NO_ADDRESS` when there is none."""
    address = (address or "").strip()
    if not address:
        return _NO_ADDRESS
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:  # not an address (a test's stand-in, ...): as given, bounded
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _digest(name: str) -> str:
    return hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


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
        _CLIENTS.forget_name(str(self.settings.database), name)
        assert found is not None
        return found

    def current_user(self, name: str) -> User | None:
        """The user as stored now (the app re-reads it on every page view, so a disabled user
        or a changed role takes effect at once); None when there is no such user."""
        with self.db.connect() as con:
            return user_store.get(con, name)

    def authenticate(self, name: str, password: str, *, client: str | None = None) -> User:
        """The user with this name and password, or AuthenticationError. Open to everyone:
        it is the login. `client` is the browser's address (the login form passes
        `st.context.ip_address`); None where there is none: then all such logins of a name
        count as one client (the module docstring says why per client)."""
        name = (name or "").strip()
        now = self.clock()
        database = str(self.settings.database)
        with self.db.connect() as con:
            found = user_store.with_hash(con, name) if name else None
        per_client = (database, _digest(name), client_of(client))
        per_name = (database, _digest(name))
        failures, last = _CLIENTS.get(per_client)
        waits = [_aware(last) + lockout(failures) - now] if last is not None else []
        if found is None:
            waits.append(name_wait(*_UNKNOWN.get(per_name), now))
        else:
            waits.append(name_wait(found[0].failed_logins, found[0].last_failed_at, now))
        wait = max(waits)
        if wait > dt.timedelta(0):
            seconds = math.ceil(wait.total_seconds())
            raise AuthenticationError(f"too many failed logins for {name!r}: try again in {seconds} seconds")
        stored = found[1] if found else _DUMMY_HASH
        ok = check_password(password or "", stored)
        outdated = needs_rehash(stored)
        if found is None or not ok:
            _CLIENTS.fail(per_client, now, lambda count, _: count + 1)
            if found is None:
                _UNKNOWN.fail(per_name, now, lambda count, at: name_level(count, at, now) + 1)
            # For an unknown name the same UPDATE changes no row: it costs the same time.
            with self.db.connect() as con:
                user_store.record_failure(con, name, now, NAME_LEAK)
            raise AuthenticationError("wrong name or password")
        user = found[0]
        if user.disabled:
            raise AuthenticationError(f"the user {name!r} is disabled: ask an admin")
        _CLIENTS.forget(per_client)
        if user.failed_logins:  # the password holder is here: the name's count starts afresh
            with self.db.connect() as con:
                user_store.clear_failures(con, name)
        if outdated:
            with self.db.connect() as con:
                user_store.replace_hash(con, name, stored, hash_password(password))
        return user
