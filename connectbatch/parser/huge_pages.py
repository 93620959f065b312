"""Whether a big parse's column buffers ask the kernel for transparent huge pages.

With the hint (`_csvcore.use_huge_pages`, madvise MADV_HUGEPAGE on buffers of 2 MB or more)
the kernel fills a buffer 2 MB per page fault instead of 4 KB: the 1M-row parse took 0.63 s
instead of 0.70 s on one thread (issue 13, 2026-12-07). But where no free 2 MB block is left,
the kernel compacts memory to make one *during the fault*, and an earlier host stalled for
1-5 s in a parse that way. So the hint is given only to a parse the free 2 MB-and-larger
blocks can hold twice over, as /proc/buddyinfo lists them right now: then no fault needs to
compact, and a busy or fragmented machine simply parses as before. Small parses never ask.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

__all__ = ["MIN_BYTES", "free_huge_block_bytes", "prepare"]

MIN_BYTES = 32 * 1024 * 1024  # input below this: leave the setting as it is
_BUDDYINFO = Path("/proc/buddyinfo")
_HUGE_ORDER = 9  # 2^9 pages of 4 KB: one 2 MB huge page
_OUTPUT_PER_INPUT = 1.5  # a call-conversion parse's Arrow output per input byte


def free_huge_block_bytes(buddyinfo: str | None = None) -> int:
    """Bytes in free blocks of 2 MB or larger, over every zone (0 when unknown)."""
    if buddyinfo is None:
        try:
            buddyinfo = _BUDDYINFO.read_text()
        except OSError:
            return 0
    total = 0
    for line in buddyinfo.splitlines():
        counts = line.split("zone", 1)[-1].split()[1:]  # after the zone's name
        for order, count in enumerate(counts):
            if order >= _HUGE_ORDER and count.isdigit():
                total += int(count) * 4096 * (1 << order)
    return total


def prepare(core: ModuleType, expect_bytes: int) -> None:
    """Set the compiled core's hint for a parse of about `expect_bytes` of input (0:
    unknown); a core without the hint (the pure-Python reference) is left alone."""
    use = getattr(core, "use_huge_pages", None)
    if use is None or expect_bytes < MIN_BYTES:
        return
    use(free_huge_block_bytes() >= 2 * _OUTPUT_PER_INPUT * expect_bytes)
