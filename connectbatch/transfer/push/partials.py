"""What broken uploads leave in the push folders, removed once they are old.

A completed upload is ingested and removed within seconds; a file that stays is what a broken
upload left (kept that long so that the partner can resume it), or an upload no connection
took (its history says so). Each is removed after CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS.
The hosted FTP server sweeps at its start and hourly; the engine does the same whenever it
runs the hosted SFTP server, so a deployment serving SFTP alone cleans up too.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from connectbatch.transfer.push.completed import noted_paths

log = logging.getLogger("connectbatch.transfer.push")
# Where a push root keeps a second name of each upload being loaded, which the ingest reads
# (`writers.OpenWrites.claim`): beside the partners' homes, never inside one, so no session can
# open, list or overwrite it.
LOADING = ".loading"

SWEEP_EVERY = 3600.0  # seconds between sweeps of partial uploads


def forget_claims(root: Path) -> None:
    """Remove the second names a killed process's push ingests left under `LOADING`
    (`Gateway._claim`), before the servers start: the uploads keep their own names, and a
    loaded upload's copy there stayed until the sweep's grace ran out (a day, by default)."""
    shutil.rmtree(root / LOADING, ignore_errors=True)


def grace_seconds(hours: float) -> float | None:
    """CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS as the sweep's grace; None for 0, which keeps
    the files: read literally it swept every file older than now, uploads being written and
    uploads waiting to be loaded among them."""
    return hours * 3600 if hours > 0 else None


def sweep_partials(root: Path, grace_seconds: float, now: float | None = None) -> int:
    """Remove files under `root` (the push folders) not modified for `grace_seconds`: what a
    broken upload left behind (completed uploads are ingested and removed within seconds).
    Symlinks are neither followed nor removed. Returns how many files went.

    A finished upload is not judged by its modification time, which the client sets (WinSCP
    and `sftp -p` keep the file's own, days old): one its completion note names (waiting
    for its turn, or for the next start after a crash) stays while the note is younger than
    the grace, and an upload's private name while it loads (`.loading`) is judged by its
    inode's change time, which only this host sets (the claim links it)."""
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - grace_seconds
    noted = noted_paths(root, cutoff)
    loading = os.path.join(root, LOADING)
    removed = 0
    for folder, _dirs, files in os.walk(root):
        ours = folder == loading or folder.startswith(loading + os.sep)
        for name in files:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
                changed = max(info.st_mtime, info.st_ctime) if ours else info.st_mtime
                if os.path.islink(path) or changed >= cutoff or os.path.realpath(path) in noted:
                    continue
                os.unlink(path)
                removed += 1
            except OSError:
                continue
    if removed:
        log.info("removed %d partial upload(s) older than %.0f hours", removed, grace_seconds / 3600)
    return removed
