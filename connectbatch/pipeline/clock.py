"""The pipeline's notion of "now": one injectable clock, so tests can pin run times and lock
periods without patching the datetime module."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
