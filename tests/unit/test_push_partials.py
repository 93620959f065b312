"""The sweep of broken uploads (transfer/push/partials.py) never takes a finished upload.

Found by trying the hosted SFTP server as a partner: a client that keeps a file's own time
(`sftp put -p`, WinSCP) set the upload's modification time to days ago, and a sweep before
the upload was taken in (the hourly one while it waited behind other ingests, or the one at
the start after a crash, which ran before the finished uploads were taken in again) removed it
as a broken upload: the partner had been told it arrived, and no run or history line said it
was gone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from connectbatch.transfer.push.completed import Completed
from connectbatch.transfer.push.partials import LOADING, sweep_partials

DAY = 86400.0


def _old(path: Path, data: bytes = b"CampaignId,...", days: float = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp))  # as the client set it
    return path


def test_a_finished_upload_with_an_old_time_is_kept_while_its_note_is_young(tmp_path: Path) -> None:
    root = tmp_path / "push"
    finished = _old(root / "7" / "calls.csv")
    broken = _old(root / "7" / "half.csv")
    Completed(root).note(7, finished)

    assert sweep_partials(root, DAY) == 1
    assert finished.exists() and not broken.exists()
    [waiting] = Completed(root).waiting()  # still there to be taken in
    assert waiting.path == finished


def test_a_note_older_than_the_grace_goes_with_its_upload(tmp_path: Path) -> None:
    root = tmp_path / "push"
    finished = _old(root / "7" / "calls.csv")
    note = Completed(root).note(7, finished)
    assert note is not None
    stamp = time.time() - 2 * DAY
    os.utime(note, (stamp, stamp))

    assert sweep_partials(root, DAY) == 2
    assert not finished.exists() and not note.exists()


def test_an_upload_loading_under_its_private_name_is_judged_by_its_change_time(tmp_path: Path) -> None:
    root = tmp_path / "push"
    upload = _old(root / "7" / "calls.csv")
    aside = root / LOADING / "0123abcd" / "calls.csv"
    aside.parent.mkdir(parents=True)
    os.link(upload, aside)  # as the claim does: the inode changed now, its mtime days ago
    Completed(root).note(7, upload)

    sweep_partials(root, DAY)
    assert aside.exists() and upload.exists()
    # a day later both are what a crash left: they go
    assert sweep_partials(root, DAY, now=time.time() + 2 * DAY) == 3  # upload, aside, note
    assert not aside.exists()


def test_unreadable_or_foreign_notes_protect_nothing_and_break_nothing(tmp_path: Path) -> None:
    root = tmp_path / "push"
    broken = _old(root / "7" / "half.csv")
    notes = root / ".completed"
    notes.mkdir(parents=True)
    (notes / "a.json").write_text("{not json")
    (notes / "b.json").write_text('{"connection_id": 7}')

    assert sweep_partials(root, DAY) == 1
    assert not broken.exists()
