"""Flood and guessing defences shared by the sessions of one hosted FTP server.

* **Per-address limit on connections that have not logged in.** A few hundred idle sockets
  from one address used to fill the server's connection table and lock every partner out.
  Now one address may hold at most `max_unauthenticated` connections that have not logged in;
  a new one takes the place of that address's oldest, which is closed (as the SFTP server's
  `Slots` do), so partners behind one NAT address are never locked out by an idle flood from
  it: idle sockets only crowd out other idle sockets. Each is also dropped after the pre-auth
  timeout (`session`).
* **A full server makes room.** Idle sockets from many addresses (8 each from 64 addresses of
  one network) used to fill the server's whole connection table, and every partner then got
  `421 Too many connections`. When the table is full, a new connection takes the place of the
  oldest connection that has not logged in, whatever its address (`make_room`), as the SFTP
  server does; logged-in sessions are never displaced.
  Logged-in sessions do not count: a partner uploading 20 files in parallel from one address
  is normal use, bounded only by the server's overall connection limit.
* **Failed-login throttling per address.** Every failure from an address doubles the delay
  before its next 530 (from `base_delay`, capped at `max_delay`); after `lockout_after`
  failures within `window` seconds the address is refused outright (421, even with a right
  password) until `lockout` seconds have passed.
* **Bounded logging.** `RateLimitFilter` lets through a few records per message per interval
  and then one summary of how many were suppressed, so a flood cannot fill the disk with
  per-connection lines.

Everything here runs on the server's single IO-loop thread, except `RateLimitFilter`, whose
budget (`push/budget.py`, shared with the SFTP server) is locked: logging can be called from
any thread.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from connectbatch.transfer.push.budget import RateBudget

_PEER_PREFIX = re.compile(r"^\S+:\d+-\[[^\]]*\]\s*")
_NUMBERS = re.compile(r"\d+")


@dataclass(eq=False)
class Pending:
    """A connection that has not logged in yet, and how to close it when displaced (`close`
    takes the reply telling the client why)."""

    address: str
    close: Callable[[str], None]


@dataclass
class AddressGuard:
    """Per-address counters of one server (see the module doc)."""

    max_unauthenticated: int = 8
    base_delay: float = 1.0
    max_delay: float = 30.0
    lockout_after: int = 10
    window: float = 900.0
    lockout: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _pending: dict[str, list[Pending]] = field(default_factory=dict)  # oldest first
    _arrival: dict[Pending, None] = field(default_factory=dict)  # all addresses, oldest first
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    # ---- connections that have not logged in

    def admit(self, address: str, close: Callable[[str], None]) -> tuple[Pending, list[Pending]]:
        """Count a new connection from `address`; when the address already holds its limit,
        its oldest connections that have not logged in make room (the caller closes them)."""
        waiting = self._pending.setdefault(address, [])
        displaced: list[Pending] = []
        while self.max_unauthenticated and len(waiting) >= self.max_unauthenticated:
            old = waiting.pop(0)
            self._arrival.pop(old, None)
            displaced.append(old)
        pending = Pending(address, close)
        waiting.append(pending)
        self._arrival[pending] = None
        return pending, displaced

    def make_room(self) -> Pending | None:
        """The server is full: the oldest connection not logged in yet, from any address,
        no longer counted (the caller closes it), or None when every connection has logged
        in (then the newcomer is the one refused)."""
        oldest = next(iter(self._arrival), None)
        if oldest is not None:
            self.release(oldest)
        return oldest

    def release(self, pending: Pending) -> None:
        """A counted connection logged in or went away (or was displaced already)."""
        self._arrival.pop(pending, None)
        waiting = self._pending.get(pending.address)
        if waiting is None:
            return
        if pending in waiting:
            waiting.remove(pending)
        if not waiting:
            del self._pending[pending.address]

    def unauthenticated(self, address: str) -> int:
        return len(self._pending.get(address, ()))

    # ---- failed logins

    def _recent(self, address: str) -> list[float]:
        now = self.clock()
        recent = [t for t in self._failures.get(address, []) if now - t < self.window]
        if recent:
            self._failures[address] = recent
        else:
            self._failures.pop(address, None)
        return recent

    def locked(self, address: str) -> bool:
        """Is this address refused for now after too many failed logins?"""
        until = self._locked_until.get(address)
        if until is None:
            return False
        if self.clock() >= until:
            del self._locked_until[address]
            self._failures.pop(address, None)
            return False
        return True

    def login_failed(self, address: str) -> float:
        """Record a failure; the delay before the 530 reply (growing with each failure)."""
        recent = self._recent(address)
        recent.append(self.clock())
        self._failures[address] = recent
        if self.lockout_after and len(recent) >= self.lockout_after:
            self._locked_until[address] = self.clock() + self.lockout
        return float(min(self.max_delay, self.base_delay * 2 ** (len(recent) - 1)))

    def login_succeeded(self, address: str) -> None:
        """A right password from this address: its earlier mistakes are forgiven."""
        self._failures.pop(address, None)


class RateLimitFilter(logging.Filter):
    """At most `burst` records per message template per `interval` seconds; the first record
    after a suppressed stretch says how many were dropped."""

    def __init__(
        self, burst: int = 5, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.budget = RateBudget(burst, interval, clock)

    @staticmethod
    def template(record: logging.LogRecord) -> str:
        """What makes two records "the same message": the text without pyftpdlib's
        "address:port-[user]" prefix and with every number blanked."""
        text = _PEER_PREFIX.sub("", str(record.msg))
        return f"{record.name}:{record.levelno}:{_NUMBERS.sub('#', text)}"

    def filter(self, record: logging.LogRecord) -> bool:
        allowed, dropped = self.budget.take(self.template(record))
        if not allowed:
            return False
        if dropped:
            record.msg = f"{record.msg} [{dropped} similar messages suppressed]"
        return True
