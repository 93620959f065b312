"""Staging by copy (`staging.stage`, the CLI's `ingest FILE`): one pass that hashes the very
bytes it writes, a helper thread writing one reused buffer while the other is hashed
(issue 13). Whatever the size against the chunk, the staged copy is the file's bytes under
their sha256, and a failed write leaves no temporary file behind."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path

import pytest

from connectbatch.pipeline import staging, staging_copy

CHUNK = 64


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 7 * CHUNK + 5])
def test_the_staged_copy_is_the_files_bytes_under_their_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(staging_copy, "CHUNK", CHUNK)
    data = bytes((i * 7 + i // CHUNK) % 256 for i in range(size))
    source = tmp_path / "calls.csv"
    source.write_bytes(data)
    staged = staging.stage(tmp_path / "staging", source)
    assert staged.sha256 == hashlib.sha256(data).hexdigest() and staged.size == size
    assert staged.path == tmp_path / "staging" / staged.sha256
    assert staged.path.read_bytes() == data and source.read_bytes() == data
    assert staged.path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "staging").iterdir()] == [staged.sha256]


class _ShortWrites(io.RawIOBase):
    """A raw file that takes at most 5 bytes per write (as a raw write may)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        chunk = bytes(memoryview(b))[:5]  # type: ignore[arg-type]
        self.data += chunk
        return len(chunk)


def test_short_writes_are_completed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staging_copy, "CHUNK", CHUNK)
    data = bytes(range(256)) * 3
    digest = hashlib.sha256()
    out = _ShortWrites()
    assert staging_copy.copy_hashing(io.BytesIO(data), out, digest) == len(data)  # type: ignore[arg-type]
    assert bytes(out.data) == data and digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_failed_write_leaves_no_temporary_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staging_copy, "CHUNK", CHUNK)
    source = tmp_path / "calls.csv"
    source.write_bytes(b"x" * (5 * CHUNK))
    writes = []

    def full_after_two(dst: io.RawIOBase, chunk: memoryview) -> None:
        writes.append(len(chunk))
        if len(writes) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(staging_copy, "write_all", full_after_two)
    with pytest.raises(OSError) as full:
        staging.stage(tmp_path / "staging", source)
    assert full.value.errno == errno.ENOSPC
    assert list((tmp_path / "staging").iterdir()) == []


def test_the_copy_buffers_fit_the_file(tmp_path: Path) -> None:
    """Two 8 MiB buffers zero-filled for every file cost a 200-row file 7 ms of its ingest:
    a small file gets small buffers, a big one CHUNK, a pipe (no size) CHUNK."""
    small = tmp_path / "small.csv"
    small.write_bytes(b"x" * 80_000)
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (staging_copy.CHUNK + 10))
    with open(small, "rb", buffering=0) as f:
        assert staging_copy.buffer_size(f) == 80_001
    with open(big, "rb", buffering=0) as f:
        assert staging_copy.buffer_size(f) == staging_copy.CHUNK
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with open(empty, "rb", buffering=0) as f:
        assert staging_copy.buffer_size(f) == staging_copy.SMALL_BUFFER
    read_end, write_end = os.pipe()
    with open(read_end, "rb", buffering=0) as f:
        os.close(write_end)
        assert staging_copy.buffer_size(f) == staging_copy.CHUNK


@pytest.mark.parametrize("size", [1, CHUNK, CHUNK + 1, 7 * CHUNK + 5])
def test_a_big_file_is_copied_by_the_kernel_and_hashed_from_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Issue 13: copy_file_range copies (no trip through this process) while the bytes
    already copied are hashed, read back from the staged copy itself."""
    monkeypatch.setattr(staging_copy, "CHUNK", CHUNK)
    monkeypatch.setattr(staging_copy, "FLUSH_LATER_BYTES", 1)  # every file is "big"
    copies: list[int] = []
    real = os.copy_file_range

    def counted(*args: int) -> int:
        copies.append(args[2])
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", counted)
    data = bytes((i * 11 + i // CHUNK) % 256 for i in range(size))
    source = tmp_path / "calls.csv"
    source.write_bytes(data)
    staged = staging.stage(tmp_path / "staging", source)
    staging_copy.settle(staged.sha256)
    assert staged.sha256 == hashlib.sha256(data).hexdigest() and staged.size == size
    assert staged.path.read_bytes() == data
    assert len(copies) == -(-size // CHUNK) + 1  # the last one finds the end


@pytest.mark.parametrize("answer", ["unsupported", "nothing"])
def test_where_the_kernel_cannot_copy_this_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    """Another file system on an old kernel (EXDEV), or a file that gives no bytes this way
    (a file of /proc says a size and copies 0): the copy left empty, then copy_hashing."""
    monkeypatch.setattr(staging_copy, "CHUNK", CHUNK)
    monkeypatch.setattr(staging_copy, "FLUSH_LATER_BYTES", 1)

    def no_copy(src: int, dst: int, count: int, *offsets: int) -> int:
        if answer == "unsupported":
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return 0

    monkeypatch.setattr(os, "copy_file_range", no_copy)
    data = b"call,1\n" * 100
    source = tmp_path / "calls.csv"
    source.write_bytes(data)
    target = tmp_path / "copy"
    with open(source, "rb", buffering=0) as src, open(target, "wb", buffering=0) as dst:
        assert staging_copy.kernel_copy_hashing(src, dst, hashlib.sha256()) is None  # type: ignore[arg-type]
    assert target.read_bytes() == b""
    staged = staging.stage(tmp_path / "staging", source)
    staging_copy.settle(staged.sha256)
    assert staged.path.read_bytes() == data and staged.sha256 == hashlib.sha256(data).hexdigest()


def test_a_disk_that_fills_during_the_kernel_copy_leaves_no_temporary_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging_copy, "CHUNK", CHUNK)
    monkeypatch.setattr(staging_copy, "FLUSH_LATER_BYTES", 1)
    real = os.copy_file_range
    calls: list[int] = []

    def full_after_two(*args: int) -> int:
        calls.append(1)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", full_after_two)
    source = tmp_path / "calls.csv"
    source.write_bytes(b"x" * (5 * CHUNK))
    with pytest.raises(OSError) as full:
        staging.stage(tmp_path / "staging", source)
    assert full.value.errno == errno.ENOSPC
    assert list((tmp_path / "staging").iterdir()) == []


def test_a_pipe_is_not_for_the_kernel_copy(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"x" * 100)
    os.close(write_end)
    with open(read_end, "rb", buffering=0) as src, open(tmp_path / "copy", "wb", buffering=0) as dst:
        assert staging_copy.kernel_copy_hashing(src, dst, hashlib.sha256()) is None  # type: ignore[arg-type]
