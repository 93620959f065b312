"""Progress of running files, readable from any thread of the owning process.

The parser reports (bytes read, rows accepted) per chunk; the UI's progress bar polls
`get()`. Kept in memory on purpose: progress is only interesting while the process that
does the work is alive, and writing it to the database would contend with the load itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    bytes_total: int
    bytes_done: int = 0
    rows: int = 0

    @property
    def fraction(self) -> float:
        return min(1.0, self.bytes_done / self.bytes_total) if self.bytes_total else 1.0


_lock = threading.Lock()
_state: dict[int, Progress] = {}


def start(run_id: int, bytes_total: int) -> None:
    with _lock:
        _state[run_id] = Progress(bytes_total)


def update(run_id: int, bytes_done: int, rows: int) -> None:
    with _lock:
        current = _state.get(run_id)
        if current is not None:
            _state[run_id] = Progress(current.bytes_total, bytes_done, rows)


def get(run_id: int) -> Progress | None:
    with _lock:
        return _state.get(run_id)


def forget(run_id: int) -> None:
    with _lock:
        _state.pop(run_id, None)
