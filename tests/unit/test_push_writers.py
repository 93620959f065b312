"""The hosted servers' registry of files open for writing (transfer/push/writers.py): what it
keeps of an upload nobody claims does not grow for the life of the server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectbatch.transfer.push import writers
from connectbatch.transfer.push.writers import OpenWrites


def test_stamps_nobody_claims_are_forgotten_after_a_day_and_the_rest_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers, "PRUNE_EVERY", 4)
    now = [0.0]
    registry = OpenWrites(clock=lambda: now[0])

    def upload(name: str, *, close: bool = True) -> Path:
        path = tmp_path / name
        fd, writing = registry.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"x")
        os.close(fd)
        if close:
            registry.end(writing)
        return path

    left = [upload(f"notes_{i}.txt") for i in range(3)]  # never claimed (a pattern took none)
    still_open = upload("big.csv", close=False)  # a slow upload, still being written
    now[0] += writers.STALE_SECONDS + 1
    fresh = [upload(f"calls_{i}.csv") for i in range(4)]  # the 8th opening looks for stale stamps

    assert all(registry.stamp(p) == 0 for p in left)  # forgotten: about a day old, unclaimed
    assert registry.writing(still_open) and registry.stamp(still_open) != 0
    assert all(registry.stamp(p) != 0 for p in fresh)
    assert len(registry) == 5
