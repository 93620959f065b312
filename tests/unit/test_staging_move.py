"""Staging by rename (`staging.stage(..., move=True)`): a fetched temporary file is hashed
where it lies and renamed into staging, not copied a second time (issue 13)."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import pytest

from connectbatch.pipeline import staging

DATA = b"CallSessionId,EventDate\r\nabc,2026-12-01T10:00:00Z\r\n" * 1000


def fetched(tmp_path: Path, data: bytes = DATA) -> Path:
    path = tmp_path / "incoming" / "payload"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    old = time.time() - 90 * 86400  # a fetch may keep the remote file's time
    os.utime(path, (old, old))
    return path


def test_a_fetched_file_is_renamed_into_staging(tmp_path: Path) -> None:
    source = fetched(tmp_path)
    staged = staging.stage(tmp_path / "staging", source, move=True)
    assert staged.sha256 == hashlib.sha256(DATA).hexdigest() and staged.size == len(DATA)
    assert not source.exists()
    assert staged.path == tmp_path / "staging" / staged.sha256
    assert staged.path.read_bytes() == DATA
    assert staged.path.stat().st_mode & 0o777 == 0o600
    assert time.time() - staged.path.stat().st_mtime < 60  # retention counts from now, not the remote time
    assert staging.verify(tmp_path / "staging", staged.sha256) == staged.path


def test_bytes_already_staged_are_kept_and_the_fetched_copy_left_to_its_owner(tmp_path: Path) -> None:
    first = staging.stage(tmp_path / "staging", fetched(tmp_path), move=True)
    again = fetched(tmp_path)
    second = staging.stage(tmp_path / "staging", again, move=True)
    assert second.path == first.path and again.exists()  # the caller removes its own copy


def test_a_damaged_staged_copy_is_replaced_by_the_fetched_bytes(tmp_path: Path) -> None:
    staged = staging.stage(tmp_path / "staging", fetched(tmp_path), move=True)
    staged.path.write_bytes(b"damaged")
    again = staging.stage(tmp_path / "staging", fetched(tmp_path), move=True)
    assert again.path.read_bytes() == DATA


def test_across_file_systems_the_bytes_are_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace
    source = fetched(tmp_path)

    def other_device(src: object, dst: object) -> None:
        if Path(str(src)) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(staging.os, "replace", other_device)
    staged = staging.stage(tmp_path / "staging", source, move=True)
    assert staged.path.read_bytes() == DATA and source.exists()  # copied; the caller removes it
