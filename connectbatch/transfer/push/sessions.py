"""Logged-in sessions per partner login on one hosted server, at most a few at a time.

The per-address limits (`sftp/guard.py`, `ftp/guard.py`) only count connections that have not
logged in, and rightly so: a partner uploading in parallel is normal. But one valid login
(misconfigured, or stolen) could then open sessions from many addresses until it held every
session the server has, and every other partner was locked out. So each login may hold
`per_login` sessions at once; one more is refused at login with a reply saying why, and a
session gives its place back when it ends, however it ends (both servers release it from the
one place every ending of theirs goes through).

A login is its user name: a login shared by several push connections is one login, and the
SFTP and FTP servers each keep their own count (a login works over one method only).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


def too_many_sessions(limit: int) -> str:
    """What a partner over the limit is told (both servers, in their protocol's reply)."""
    return (
        f"Too many sessions for this login: at most {limit} at a time. "
        "Close one of them (or wait for it to end) and try again."
    )


@dataclass(eq=False)
class SessionTicket:
    """One logged-in session's place, given back once (`LoginSessions.close`)."""

    username: str
    closed: bool = field(default=False, repr=False)


class LoginSessions:
    """How many sessions each login holds; thread-safe (SFTP sessions run in threads)."""

    def __init__(self, per_login: int) -> None:
        if per_login < 1:
            raise ValueError("a login needs at least one session")
        self.per_login = per_login
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def open(self, username: str) -> SessionTicket | None:
        """A place for a new session of this login; None when it already holds all of its."""
        with self._lock:
            held = self._open.get(username, 0)
            if held >= self.per_login:
                return None
            self._open[username] = held + 1
        return SessionTicket(username)

    def close(self, ticket: SessionTicket | None) -> None:
        """Give a session's place back. Safe to call more than once, and with None, so that
        every path a session ends by may call it."""
        if ticket is None:
            return
        with self._lock:
            if ticket.closed:
                return
            ticket.closed = True
            held = self._open.get(ticket.username, 0) - 1
            if held > 0:
                self._open[ticket.username] = held
            else:  # no entry per login that once logged in: bounded by who is connected now
                self._open.pop(ticket.username, None)

    def held(self, username: str) -> int:
        """Sessions this login holds now."""
        with self._lock:
            return self._open.get(username, 0)
