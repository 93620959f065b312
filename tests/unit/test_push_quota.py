"""The bytes waiting in a push folder (`transfer.push.quota`), without a server: uploads
writing at once never take the folder past its quota together, a folder counts what is on
disk (a file gone since the last count is noticed before a write is refused), and the count
stays bounded (a folder of too many entries counts as full). The servers' side is in
tests/integration/test_push_limits.py."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from connectbatch.transfer.push import quota as quota_module
from connectbatch.transfer.push.quota import PushQuota
from connectbatch.transfer.push.sessions import LoginSessions


def _open(folder: Path, name: str) -> int:
    return os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)


def test_uploads_writing_at_once_never_pass_the_quota_together(tmp_path: Path) -> None:
    quota = PushQuota()
    (tmp_path / "waiting.csv").write_bytes(b"x" * 1000)
    fds = [_open(tmp_path, f"up{i}.csv") for i in range(8)]
    uploads = [quota.start(tmp_path, 10_000, fd) for fd in fds]
    granted = [0] * len(uploads)

    def write(index: int) -> None:
        for end in range(100, 5_001, 100):  # each would like 5,000 bytes, 100 at a time
            if not uploads[index].extend(end):
                return
            granted[index] = end

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(uploads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 9_000  # exactly what was free beside the waiting file
    assert quota.waiting(tmp_path) == 10_000
    for upload, fd in zip(uploads, fds, strict=True):
        upload.finish(kept=True)
        os.close(fd)
    assert quota.waiting(tmp_path) is None  # nothing open: the next upload counts afresh


def test_a_file_gone_since_the_count_frees_its_bytes_and_a_removed_upload_its_own(tmp_path: Path) -> None:
    quota = PushQuota()
    (tmp_path / "waiting.csv").write_bytes(b"x" * 800)
    keep = _open(tmp_path, "open.csv")
    holder = quota.start(tmp_path, 1_000, keep)  # keeps the folder's count alive
    fd = _open(tmp_path, "new.csv")
    upload = quota.start(tmp_path, 1_000, fd)
    assert not upload.extend(300)  # 800 + 300 > 1,000
    (tmp_path / "waiting.csv").unlink()  # ingested meanwhile
    assert upload.extend(900)  # counted again before refusing: room now
    upload.finish(kept=False)  # refused later and removed by the server: its bytes go
    os.close(fd)
    (tmp_path / "new.csv").unlink()
    assert quota.waiting(tmp_path) == 0
    holder.finish(kept=True)
    os.close(keep)


def test_a_folder_of_too_many_entries_counts_as_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The count must stay bounded, and must not fail open: bytes hidden behind many empty
    files would not be counted at all."""
    monkeypatch.setattr(quota_module, "MAX_SCAN_ENTRIES", 5)
    for i in range(6):
        (tmp_path / f"empty{i}").touch()
    fd = _open(tmp_path, "new.csv")
    upload = PushQuota().start(tmp_path, 1 << 30, fd)
    assert upload.extend(0)  # nothing added: nothing to refuse
    assert not upload.extend(1)
    upload.finish(kept=False)
    os.close(fd)
    # what the partner is told names the count too: "at most N bytes" alone, for a folder
    # of empty files, read as wrong
    assert "in at most 5 files and folders" in quota_module.over_quota(1 << 30)


def test_a_login_holds_at_most_its_sessions_and_each_place_comes_back_once() -> None:
    sessions = LoginSessions(2)
    first, second = sessions.open("acme"), sessions.open("acme")
    assert first is not None and second is not None
    assert sessions.open("acme") is None
    assert sessions.open("other") is not None  # per login
    sessions.close(first)
    sessions.close(first)  # every ending may say so: counted once
    sessions.close(None)
    assert sessions.held("acme") == 1
    assert sessions.open("acme") is not None
