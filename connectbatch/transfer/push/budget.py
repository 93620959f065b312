"""How often the same thing may be said: the one rate budget both hosted servers' logs use.

A flood (idle sockets, password guessing) produces the same message thousands of times; each
server lets a few through per message and window and counts the rest, which the next message
that gets through reports. The FTP server keys by a message's template (a logging filter), the
SFTP server by an explicit key; the bookkeeping is this one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_KEYS = 1000  # many distinct messages: the oldest windows are forgotten


class RateBudget:
    """At most `burst` events per key per `window` seconds. Thread-safe: logging can be
    called from any thread."""

    def __init__(self, burst: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.burst = burst
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int, int]] = {}  # key -> (start, passed, held back)

    def take(self, key: str) -> tuple[bool, int]:
        """(whether this event may go through, how many of its kind were held back before it;
        that count is reported once, then starts again)."""
        now = self.clock()
        with self._lock:
            start, passed, held = self._windows.get(key, (now, 0, 0))
            if now - start >= self.window:
                start, passed = now, 0
            if passed >= self.burst:
                self._windows[key] = (start, passed, held + 1)
                return False, 0
            self._windows[key] = (start, passed + 1, 0)
            if len(self._windows) > MAX_KEYS:
                for old in sorted(self._windows, key=lambda k: self._windows[k][0])[: MAX_KEYS // 2]:
                    del self._windows[old]
        return True, held
