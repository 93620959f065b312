"""A clock a test moves by hand: `Services(settings, clock=clock)`, then `clock.now += ...`."""

from __future__ import annotations

import datetime as dt


class Clock:
    """Callable like `pipeline.ingest.utcnow`; answers `now` until a test changes it (by
    default the moment it was made, whole seconds, UTC)."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now
