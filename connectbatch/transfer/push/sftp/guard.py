"""Keeping one address from locking every partner out: connection slots, failed-login
throttling and a log that a flood cannot fill.

Before this, 130 idle TCP connections from one address used up the server's session cap, so
real partners were refused, and each dropped connection logged a traceback (~5,600 lines for
one flood). Now:

* `Slots` — every connection holds a slot keyed by the client's address. An address may hold at
  most `per_address` slots that have not logged in yet (as the FTP server counts them), the
  server `total` slots of any kind. A new connection over either limit takes the slot
  of the **oldest connection that has not logged in** (from the same address first), which is
  closed; logged-in sessions are never displaced. So idle sockets only ever crowd out other
  idle sockets, and a real client, even behind the same address, always gets its turn.
* `FailedLogins` — wrong passwords per address in a sliding window. Past the limit the address
  may not try passwords at all until old failures age out (the gateway is not asked, so
  guessing is pointless), while closing after three failures per connection stays as before.
* `OpenFiles` — files one partner login holds open at once, across all its sessions and
  channels. Each open file is a descriptor of this process; the per-channel cap alone let one
  login hold 8 sessions x 4 channels x 64 files = 2,048 of them, past a soft limit of 1,024,
  so other partners' logins and the database failed with "Too many open files".
* `LogLimiter` — the same kind of message (per key, e.g. "preauth timeout") is logged at most a
  few times per window; what was held back is counted in the next one that gets through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectbatch.transfer.push.budget import RateBudget
from connectbatch.transfer.push.sessions import LoginSessions, SessionTicket


def _never() -> bool:
    return False


@dataclass(eq=False)
class Slot:
    """One connection: its address, when it came, how to close it, and (once its transport
    exists) how to ask whether it has logged in."""

    address: str
    opened: float
    close: Callable[[], None]
    logged_in: Callable[[], bool] = _never

    @property
    def authenticated(self) -> bool:
        try:
            return bool(self.logged_in())
        except Exception:
            return False


@dataclass
class Slots:
    """Connection slots per address and in total, displacing idle connections, not sessions."""

    per_address: int
    total: int
    _slots: list[Slot] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, address: str, close: Callable[[], None]) -> tuple[Slot | None, list[Slot]]:
        """A slot for a new connection (None: refused, every slot holds a logged-in session)
        and the idle connections it displaced, which the caller closes (outside our lock)."""
        displaced: list[Slot] = []
        with self._lock:
            # Only connections that have not logged in count against an address: a partner
            # may run many sessions in parallel, a flood of idle sockets may not.
            mine = [s for s in self._slots if s.address == address and not s.authenticated]
            if len(mine) >= self.per_address:
                victim = _oldest_idle(mine)
                if victim is None:
                    return None, []
                self._slots.remove(victim)
                displaced.append(victim)
            if len(self._slots) >= self.total:
                victim = _oldest_idle(self._slots)
                if victim is None:
                    return None, displaced
                self._slots.remove(victim)
                displaced.append(victim)
            slot = Slot(address, time.monotonic(), close)
            self._slots.append(slot)
            return slot, displaced

    def release(self, slot: Slot) -> None:
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)

    def expired(self, timeout: float) -> list[Slot]:
        """Connections that have not logged in within `timeout` seconds (the caller closes them)."""
        cutoff = time.monotonic() - timeout
        with self._lock:
            late = [s for s in self._slots if not s.authenticated and s.opened < cutoff]
            for slot in late:
                self._slots.remove(slot)
            return late

    def count(self, address: str | None = None) -> int:
        with self._lock:
            return sum(1 for s in self._slots if address is None or s.address == address)


def _oldest_idle(slots: list[Slot]) -> Slot | None:
    idle = [s for s in slots if not s.authenticated]
    return min(idle, key=lambda s: s.opened) if idle else None


@dataclass
class FailedLogins:
    """Wrong passwords per address within `window` seconds; `blocked` past `limit` of them."""

    limit: int = 20
    window: float = 600.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        while times and times[0] < now - self.window:
            times.popleft()
        return times

    def blocked(self, address: str) -> bool:
        with self._lock:
            blocked = len(self._recent(address, time.monotonic())) >= self.limit
            if not self._failures.get(address):
                self._failures.pop(address, None)
            return blocked

    def blocked_for(self, address: str) -> float:
        """Seconds until the address may try passwords again (0: it may now): until enough
        of its failures age out of the window to take it below the limit. Told to a client
        refused unchecked, so a partner behind a guessed-at address knows its password is
        not the problem and when to try again."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.limit:
                if not times:
                    self._failures.pop(address, None)
                return 0.0
            # the address is below the limit again once its limit-th newest failure ages out
            return max(0.0, times[len(times) - self.limit] + self.window - now)

    def failed(self, address: str) -> int:
        """Record one failure; the number within the window."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            times.append(now)
            if len(self._failures) > 10_000:  # bounded memory under a distributed attack
                for stale in [a for a, t in self._failures.items() if not t or t[-1] < now - self.window]:
                    del self._failures[stale]
            return len(times)


def too_many_open_files(limit: int) -> str:
    """What a login at its open-file limit is told when it opens one more."""
    return (
        f"too many open files for this login: at most {limit} at a time across all its "
        "sessions; close some and try again"
    )


# One open file's place in its login's count, given back once (`OpenFiles.give_back`).
FilePlace = SessionTicket


class OpenFiles(LoginSessions):
    """How many files each login holds open on the server, across all its sessions and
    channels; thread-safe. The same count per login as its sessions' (`push.sessions`)."""

    take = LoginSessions.open  # a place for one more open file; None when it holds all of its
    give_back = LoginSessions.close  # the file was closed, failed or its session ended (once)


@dataclass
class LogLimiter:
    """At most `burst` records per key per `window` seconds; the rest are counted, not logged
    (the budget is `push/budget.py`, shared with the FTP server)."""

    logger: logging.Logger
    burst: int = 5
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _budget: RateBudget = field(init=False)

    def __post_init__(self) -> None:
        self._budget = RateBudget(self.burst, self.window, self.clock)

    def log(self, key: str, level: int, message: str, *args: Any, exc_info: bool = False) -> bool:
        """Log unless this key is over its budget (True: logged)."""
        allowed, held = self._budget.take(key)
        if not allowed:
            return False
        if held:
            message += " (%d similar messages were not logged)"
            args = (*args, held)
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True
