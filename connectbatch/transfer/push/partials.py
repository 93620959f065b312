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
import time
from pathlib import Path

log = logging.getLogger("connectbatch.transfer.push")

SWEEP_EVERY = 3600.0  # seconds between sweeps of partial uploads


def grace_seconds(hours: float) -> float | None:
    """CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS as the sweep's grace; None for 0, which keeps
    the files: read literally it swept every file older than now, uploads being written and
    uploads waiting to be loaded among them."""
    return hours * 3600 if hours > 0 else None


def sweep_partials(root: Path, grace_seconds: float, now: float | None = None) -> int:
    """Remove files under `root` (the push folders) not modified for `grace_seconds`: what a
    broken upload left behind (completed uploads are ingested and removed within seconds).
    Symlinks are neither followed nor removed. Returns how many files went."""
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - grace_seconds
    removed = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
                if not os.path.islink(path) and info.st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
            except OSError:
                continue
    if removed:
        log.info("removed %d partial upload(s) older than %.0f hours", removed, grace_seconds / 3600)
    return removed
