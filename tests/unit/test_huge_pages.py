"""When a big parse asks for transparent huge pages (parser/huge_pages.py): only when the
free 2 MB blocks hold its output twice over, so no page fault has to compact memory (an
earlier host stalled 1-5 s in a parse that way); results are the same either way."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from connectbatch import _csvcore
from connectbatch.parser import huge_pages
from connectbatch.parser.api import parse_bytes

# This machine's /proc/buddyinfo of 2026-12-07: Normal fragmented (no order 9 or 10 block),
# DMA32 with 22 blocks of 2 MB and 634 of 4 MB, DMA one of 1 MB, 2 MB and three of 4 MB.
BUDDYINFO = """\
Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3
Node 0, zone    DMA32     14     32     31    150     18     11      6      5      7     22    634
Node 0, zone   Normal  82742  64010  34917  14812   2688    548     92     24      0      0      0
"""
MB = 1024 * 1024


def test_free_huge_blocks_are_counted_from_order_nine_in_every_zone() -> None:
    assert huge_pages.free_huge_block_bytes(BUDDYINFO) == (1 * 2 + 3 * 4 + 22 * 2 + 634 * 4) * MB
    assert huge_pages.free_huge_block_bytes("") == 0


def _core() -> tuple[SimpleNamespace, list[bool]]:
    calls: list[bool] = []
    return SimpleNamespace(use_huge_pages=calls.append), calls


def test_a_big_parse_asks_only_when_free_blocks_hold_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    core, calls = _core()
    monkeypatch.setattr(huge_pages, "free_huge_block_bytes", lambda: 1200 * MB)
    huge_pages.prepare(core, 400 * MB)  # 600 MB of output, twice: 1200 MB
    monkeypatch.setattr(huge_pages, "free_huge_block_bytes", lambda: 1100 * MB)
    huge_pages.prepare(core, 400 * MB)
    huge_pages.prepare(core, huge_pages.MIN_BYTES - 1)  # small: left as it is
    huge_pages.prepare(SimpleNamespace(), 400 * MB)  # the reference core has no such hint
    assert calls == [True, False]


def test_the_hint_changes_no_result(tmp_path: Path) -> None:
    data = b"id,name,when\n" + b"".join(b"%d,n%d,2026-01-01T00:00:00Z\n" % (i, i) for i in range(300_000))
    try:
        _csvcore.use_huge_pages(False)
        without = parse_bytes(data, None)
        _csvcore.use_huge_pages(True)
        with_hint = parse_bytes(data, None)
    finally:
        _csvcore.use_huge_pages(False)
    assert with_hint.table.equals(without.table) and with_hint.rejects == without.rejects
