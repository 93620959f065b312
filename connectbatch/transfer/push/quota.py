"""Bytes waiting in each push folder, held under the connection's quota.

`max_file_bytes` bounds one file; it did not bound how many a login leaves behind. Uploads
wait in the connection's push folder until ingested (seconds), and what no connection takes or
a broken upload leaves stays until the hourly sweep (`partials.py`): one login could fill the
disk with many files under the size limit each, and stop every partner's uploads and our own
staging with it. So the bytes in a push folder (a connection's home: a shared login's
connections share their owner's) may not pass `Account.push_quota_bytes`; the write that
would take them past it is refused, and the server removes that partial file.

How the bytes are counted, cheaply and right under concurrent uploads (SFTP sessions write
from several threads, the FTP loop from one, both through one `PushQuota` on the gateway):

* an upload that starts while nothing else is being written to its folder scans the folder
  (`scan`: regular files, symlinks not followed, at most MAX_SCAN_ENTRIES entries);
* each upload then reserves the bytes it adds before writing them (`Upload.extend`, under one
  lock), so two uploads can never both take the last free bytes;
* a finished upload's bytes stay counted (it waits for its ingest); a removed one's go;
* files that went since the scan (ingested, deleted, swept) are only noticed by the next scan,
  so the count errs high, never low: before refusing a write, the folder is scanned again.

A folder with more than MAX_SCAN_ENTRIES files and folders counts as full: the scan must stay
bounded, and failing open would let a login hide bytes behind many empty files.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

MAX_SCAN_ENTRIES = 10_000  # files and folders one scan of a push folder looks at, at most

_Inode = tuple[int, int]  # (st_dev, st_ino): an open upload's file, whatever it is renamed to


def over_quota(limit: int) -> str:
    """What a partner over the quota is told (both servers, in their protocol's reply)."""
    return (
        f"quota exceeded: the files waiting in your folder may take at most {limit} bytes, "
        f"in at most {MAX_SCAN_ENTRIES:,} files and folders; this upload was refused and its "
        "partial file removed. Earlier files go once they are loaded: send it again later, or "
        "send fewer files at a time (and remove folders you do not need)."
    )


def crowded(root: Path) -> str | None:
    """Why a login may not make one more folder or file in its push folder (`root`), or
    None: past MAX_SCAN_ENTRIES files and folders it is full anyway (uploads are refused),
    and folders or empty files made without end (10,000 in two seconds, audits found) use
    up the inodes of the disk every partner's folder and the database share."""
    if scan(root) is not None:
        return None
    return (
        f"too many files and folders in your folder: at most {MAX_SCAN_ENTRIES:,}; "
        "remove files and folders you do not need first"
    )


def scan(root: Path, skip: frozenset[_Inode] = frozenset()) -> int | None:
    """Bytes in the regular files under `root`, except the files in `skip` (open uploads,
    counted by their reservations instead); None past MAX_SCAN_ENTRIES entries. Symlinks are
    neither followed nor counted (our servers never create them). Entries vanishing meanwhile
    (an ingest removing its upload) are skipped."""
    total = seen = 0
    folders = [os.fspath(root)]
    while folders:
        try:
            listing = os.scandir(folders.pop())
        except OSError:
            continue
        with listing:
            for entry in listing:
                seen += 1
                if seen > MAX_SCAN_ENTRIES:
                    return None
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        info = entry.stat(follow_symlinks=False)
                        if (info.st_dev, info.st_ino) not in skip:
                            total += info.st_size
    return total


@dataclass(eq=False)
class _Folder:
    """One push folder: bytes in files no open upload writes (as of the last scan, plus the
    uploads finished since) and the uploads open in it."""

    root: Path
    settled: int = 0
    crowded: bool = False  # the last scan gave up: more than MAX_SCAN_ENTRIES entries
    uploads: set[Upload] = field(default_factory=set)

    @property
    def used(self) -> int:
        return self.settled + sum(upload.counted for upload in self.uploads)


@dataclass(eq=False)
class Upload:
    """One file being uploaded into a push folder: the bytes counted for it so far (its size
    when opened, then every byte it reserved). `extend` before writing, `finish` once closed."""

    quota: PushQuota
    folder: _Folder
    inode: _Inode
    limit: int
    counted: int

    def extend(self, end: int) -> bool:
        """Reserve the bytes to grow the file to `end`; False (nothing reserved) when that
        would take the folder past its quota: the caller refuses the write."""
        return self.quota._extend(self, end)

    def finish(self, *, kept: bool) -> None:
        """The file was closed: `kept` when it stays in the folder (finished, or broken off
        and kept for a resume); not kept when the server removed it. Safe to call twice."""
        self.quota._finish(self, kept)


class PushQuota:
    """The bytes waiting in every push folder with an upload open, for the gateway's servers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Only folders with an upload open: one starting in a quiet folder scans it afresh.
        self._folders: dict[Path, _Folder] = {}

    def start(self, root: Path, limit: int, fd: int) -> Upload:
        """An upload into the push folder `root`, writing the open file `fd`."""
        info = os.fstat(fd)
        inode = (info.st_dev, info.st_ino)
        with self._lock:
            folder = self._folders.get(root)
            fresh = folder is None
            if folder is None:
                folder = self._folders[root] = _Folder(root)
            upload = Upload(self, folder, inode, limit, info.st_size)
            folder.uploads.add(upload)
            if fresh:
                self._rescan(folder)
        return upload

    def _rescan(self, folder: _Folder) -> None:
        """Count the folder's files again (under the lock: a reservation made meanwhile would
        otherwise be counted twice or not at all)."""
        skip = frozenset(upload.inode for upload in folder.uploads)
        found = scan(folder.root, skip)
        folder.crowded = found is None
        folder.settled = 0 if found is None else found

    def _extend(self, upload: Upload, end: int) -> bool:
        with self._lock:
            grow = end - upload.counted
            if grow <= 0:
                return True
            folder = upload.folder
            if folder.crowded or folder.used + grow > upload.limit:
                self._rescan(folder)  # files may have gone since: refuse only on a fresh count
                if folder.crowded or folder.used + grow > upload.limit:
                    return False
            upload.counted = end
            return True

    def _finish(self, upload: Upload, kept: bool) -> None:
        with self._lock:
            folder = upload.folder
            if upload not in folder.uploads:
                return
            folder.uploads.discard(upload)
            if kept:
                folder.settled += upload.counted
            if not folder.uploads and self._folders.get(folder.root) is folder:
                del self._folders[folder.root]

    def waiting(self, root: Path) -> int | None:
        """Bytes counted in a folder with an upload open (None: none open; tests)."""
        with self._lock:
            folder = self._folders.get(root)
            return None if folder is None else folder.used
