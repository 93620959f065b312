"""A one-thread parse of a big file reads its chunks ahead on a thread (decode.read_ahead):
the same chunks in the same order, a reading error raised to the parse, and no thread left
behind when the parse stops early."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectbatch.parser import decode as csvdecode
from connectbatch.parser.api import parse_file


def _alive() -> int:
    return sum(t.name == "cb-read-ahead" for t in threading.enumerate())


def _settled(before: int) -> bool:
    deadline = time.monotonic() + 5
    while _alive() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    return _alive() <= before


def test_the_chunks_come_as_read() -> None:
    chunks = [bytes([i]) * 10 for i in range(50)]
    assert list(csvdecode.read_ahead(iter(chunks))) == chunks


def test_a_reading_error_is_raised_to_the_consumer() -> None:
    def broken() -> Iterator[bytes]:
        yield b"a"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(csvdecode.read_ahead(broken()))


def test_a_consumer_that_stops_early_leaves_no_reading_thread() -> None:
    before = _alive()
    reading = csvdecode.read_ahead(iter([b"x"] * 1000), depth=1)
    assert next(reading) == b"x"
    reading.close()
    assert _settled(before)


def test_a_big_file_parses_the_same_with_and_without_reading_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    with path.open("wb") as out:
        out.write(b"id,name\n")
        out.write(b"".join(b'%d,"n %d"\n' % (i, i) for i in range(400_000)))
    monkeypatch.setattr(csvdecode, "READ_AHEAD_MIN", 1)
    ahead = parse_file(path, None, threads=1)
    monkeypatch.setattr(csvdecode, "READ_AHEAD_MIN", 1 << 62)
    plain = parse_file(path, None, threads=1)
    assert ahead.table.equals(plain.table) and ahead.table.num_rows == 400_000
