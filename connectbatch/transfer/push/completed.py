"""Notes of finished uploads not taken in yet, so a partner's file survives our process.

A hosted server answers a finished upload (SFTP close, FTP 226) before the gateway's pool
takes it in; the partner then counts it as delivered. A process killed in between (a burst of
uploads waits behind a big file's ingest), or an ingest that could not reach the database,
left the file in its push folder with nothing saying it was complete: no run, no history line,
and the sweep removed it as a broken upload a day later.

So each finished upload is noted first (`note`: a small JSON file under `<push>/.completed/`,
outside every partner's home, naming the connection, the path and the file as it was: inode
and size) and the note goes only once the upload was taken in, went away or was written
again (`settle`). `waiting` lists the notes whose file is still that same file: the gateway
takes them in again at the servers' start and hourly. A file replaced or resized since it was
noted is not the noted upload: its note goes (a new upload's own completion notes it again).
A note the sweep finds a day old goes with the upload it names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from connectbatch.models import Run

log = logging.getLogger("connectbatch.transfer.push")

FOLDER = ".completed"


@dataclass(frozen=True)
class Noted:
    """A finished upload not taken in yet: its note, its connection and where it lies."""

    note: Path
    connection_id: int
    path: Path


def _identity(path: Path) -> list[int]:
    """The file and its size; not its modification time, which clients that keep a file's
    time (WinSCP, `sftp -p`) set after the upload was answered."""
    info = os.stat(path)
    return [info.st_dev, info.st_ino, info.st_size]


class Completed:
    """The notes of one push root (`<home>/push`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / FOLDER
        self._lock = threading.Lock()
        self._queued: set[Path] = set()  # notes of uploads queued in this process

    def note(self, connection_id: int, path: Path) -> Path | None:
        """Note a finished upload (None when it is gone or the note cannot be written: the
        upload is still taken in now, only not after a crash; the log says so)."""
        try:
            record = {"connection_id": connection_id, "path": str(path), "file": _identity(path)}
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            target = self.folder / f"{uuid.uuid4().hex}.json"
            temporary = target.with_suffix(".tmp")
            temporary.write_text(json.dumps(record), encoding="utf-8")
            os.replace(temporary, target)  # whole or absent, never half a note
        except OSError as exc:
            log.warning("could not note the finished upload %s: %s", path, exc)
            return None
        with self._lock:
            self._queued.add(target)
        return target

    def settle(self, note: Path | None, *, taken: bool) -> None:
        """The queued upload's turn is over: its note goes when it was taken in, went away
        or was written again (`taken`); it stays for `waiting` when its ingest failed."""
        if note is None:
            return
        with self._lock:
            self._queued.discard(note)
        if taken:
            with contextlib.suppress(OSError):
                note.unlink()

    def waiting(self) -> list[Noted]:
        """The noted uploads still there as they were noted and not queued in this process
        yet, oldest first (queued by the caller from now on); notes of other files go."""
        try:
            notes = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        except OSError:  # a note removed while listing: the next look sees the rest
            return []
        found: list[Noted] = []
        for note in notes:
            try:
                with self._lock:
                    if note in self._queued:
                        continue
                record = json.loads(note.read_text(encoding="utf-8"))
                path = Path(record["path"])
                if self.root.resolve() not in path.resolve().parents or _identity(path) != record["file"]:
                    raise ValueError("not the noted upload")
                found.append(Noted(note, int(record["connection_id"]), path))
            except (OSError, ValueError, KeyError, TypeError):
                with contextlib.suppress(OSError):
                    note.unlink()
        with self._lock:
            self._queued.update(noted.note for noted in found)
        return found


def noted_paths(root: Path, younger_than: float) -> set[str]:
    """The real paths of the uploads that notes under `root` (a push root) written after
    `younger_than` (a time.time()) name: what the sweep of broken uploads must keep. Read
    only: an unreadable or stale note is left for `Completed.waiting`, which removes it."""
    found: set[str] = set()
    for note in (root / FOLDER).glob("*.json"):
        try:
            if note.stat().st_mtime < younger_than:
                continue
            found.add(os.path.realpath(str(json.loads(note.read_text(encoding="utf-8"))["path"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


@dataclass(frozen=True)
class Waiting:
    """A finished upload waiting for its connection's turn: where it is, who waits for its
    run, the stamp of its file's opening (`writers.OpenWrites.stamp`) and its note."""

    path: Path
    future: Future[Run | None]
    stamp: int
    note: Path | None = None  # dropped once it is taken in (`Completed.settle`)


@dataclass
class Claimed:
    """An upload given a private name for its ingest (`writers.OpenWrites.claim`)."""

    path: Path
    aside: Path
    inode: tuple[int, int]
    futures: list[Future[Run | None]] = field(default_factory=list)
    loaded: bool = False  # taken in: the upload goes
    run: Run | None = None
