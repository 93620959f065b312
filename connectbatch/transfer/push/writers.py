"""Which uploaded files a session has open for writing, so the gateway never loads or removes
one that is still being written.

A partner may send a name again while its previous upload waits for its ingest: the second
upload opens the same file (O_TRUNC keeps its inode), and the gateway used to load whatever
half of it was there, then remove the file under the writer, whose own upload was then never
loaded. Both servers share one `OpenWrites` (on the gateway) and go through it:

* a session opening a file for writing `open`s it here: the file is opened without O_TRUNC,
  counted as written by its inode, and only then truncated, so no ingest can read it between
  the truncation and the count; each opening gets a new stamp (`opened`);
* one session at a time writes a file: another session's opening for writing is refused
  (EBUSY, saying why) while the first has it open. Two writers each wrote at their own
  offsets: a second upload of a name (3 rows) while a first one (100,000 rows) was still
  going left the second's rows, megabytes of NUL bytes where the first had written, then
  the rest of the first, and it loaded; a resume next to a dead session that still held the
  file completed, and was then never loaded (a push audit). Refused, the partner's client
  says why, and the upload goes through once the other session has ended;
* a finished upload is queued with the stamp of its file (`stamp`), and when its turn comes
  the gateway `claim`s it: refused while a session writes the file or when it was opened for
  writing again since (a newer upload of the name is coming, or a broken one is there: either
  way not this one); otherwise, under the same lock, the file gets a second name in a private
  folder outside every partner's home, which the ingest reads; the partner still sees the file
  under its own name (clients look at what they uploaded) until `finish` removes both;
* a session opening a claimed file to write it anew (O_TRUNC) gets a new file under the name,
  never the one being loaded, which keeps its bytes; to change a claimed file in place
  (append, resume) is refused until its ingest ends;
* the end of its writer's upload queues the file again (its close is a completion),
  under the name another session gave it meanwhile, if one did (`renamed`).

So a file open for writing by any session is never read or removed, each completed upload is
loaded once and in full, and the last complete version of a name wins over an earlier one not
loaded yet.

There is one `OpenWrites` per push root (`OpenWrites.of`): the gateway and both servers of a
data home find the same one by the folder they serve, whoever built them. A stamp nobody
claims (an upload the pattern does not take, a file the partner removed) is forgotten after
STALE_SECONDS, so a server that runs for months does not keep one for every file ever sent.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from connectbatch.store.db import private_dir

_Inode = tuple[int, int]  # (st_dev, st_ino): the file, whatever name it has now

# Modes of what partners' uploads create, on both servers: the service user's only, as the
# staging, outbound and database folders are (the FTP server made folders 0755 through
# pyftpdlib's default; then 0750/0640 let our group read every partner's uploads: audit).
NEW_FILE_MODE = 0o600
NEW_DIR_MODE = 0o700
REOPEN_TRIES = 5  # an opening that keeps finding its file claimed (never, in practice)
# Why a second session may not write a file another one writes (`OpenWrites.open`).
WRITTEN = (
    "{name} is still open for writing by another session (an earlier upload of it that has not "
    "ended); send it again once that one has ended"
)
# A stamp of a file no session writes and no ingest claimed for this long is forgotten: an
# upload is claimed seconds after its close, and the sweep removes day-old leftovers anyway.
STALE_SECONDS = 24 * 3600.0
PRUNE_EVERY = 1024  # openings between two looks for stale stamps

_ROOTS: dict[Path, OpenWrites] = {}
_ROOTS_LOCK = threading.Lock()


@dataclass(eq=False)
class Writing:
    """One session's opening of a file for writing, ended once (`OpenWrites.end`)."""

    inode: _Inode
    ended: bool = field(default=False, repr=False)


class OpenWrites:
    """Files open for writing on the hosted servers and files being loaded; thread-safe
    (SFTP sessions run in threads, the FTP server in its loop, ingests in the gateway's pool)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._writers: set[_Inode] = set()  # one session each (`open`)
        # the stamp of each file's latest opening, and when that was
        self._opened: dict[_Inode, tuple[int, float]] = {}
        self._claimed: set[_Inode] = set()
        self._stamps = itertools.count(1)
        # the name another session gave a file while it was being written: its writer
        # reports the upload complete under that name (`end`), not the one it opened
        self._moved: dict[_Inode, str] = {}

    @classmethod
    def of(cls, root: Path) -> OpenWrites:
        """The registry of a push root (`<home>/push`), shared by everything in this process
        serving it."""
        key = Path(os.path.realpath(root))
        with _ROOTS_LOCK:
            found = _ROOTS.get(key)
            if found is None:
                found = _ROOTS[key] = cls()
            return found

    def open(self, path: str, flags: int, mode: int) -> tuple[int, Writing]:
        """`os.open` for writing, counted before any truncation (see the module doc). The
        caller ends the `Writing` however its upload ends."""
        truncate = bool(flags & os.O_TRUNC)
        for _ in range(REOPEN_TRIES):
            fd = os.open(path, flags & ~os.O_TRUNC, mode)
            try:
                info = os.fstat(fd)
                inode = (info.st_dev, info.st_ino)
                with self._lock:
                    claimed = inode in self._claimed
                    if not claimed and inode in self._writers:
                        raise OSError(errno.EBUSY, WRITTEN.format(name=os.path.basename(path)))
                    if not claimed:
                        self._writers.add(inode)
                        stamp = next(self._stamps)
                        if stamp % PRUNE_EVERY == 0:
                            self._forget_stale()
                        self._opened[inode] = (stamp, self._clock())
                    elif truncate:  # sent anew: the name gets a new file, the loaded one stays
                        _unlink_if(path, inode)
                if claimed:
                    if not truncate:
                        raise OSError(
                            errno.EBUSY, f"{os.path.basename(path)} is being loaded; try again later"
                        )
                    os.close(fd)
                    continue
                writing = Writing(inode)
                if truncate:
                    try:
                        os.ftruncate(fd, 0)
                    except OSError:
                        self.end(writing)
                        raise
                return fd, writing
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
        raise OSError(errno.EBUSY, f"{os.path.basename(path)} is being loaded; try again later")

    def end(self, writing: Writing | None) -> str | None:
        """A session stopped writing the file (closed, failed or cut off); it learns the name
        the file was renamed to meanwhile by another session, if it was (`renamed`). Safe to
        call more than once, and with None."""
        if writing is None:
            return None
        with self._lock:
            if writing.ended:
                return None
            writing.ended = True
            self._writers.discard(writing.inode)
            return self._moved.pop(writing.inode, None)

    def renamed(self, path: str) -> None:
        """A session renamed a file to `path`: if it is being written (by any session), its
        upload completes under this name when its writer ends. (The rename's own session
        cannot take it in while it is written: a partner renaming `X.tmp` to `X.csv` from
        one session while another still writes it got the file left unloaded.)"""
        try:
            info = os.stat(path)
        except OSError:
            return
        with self._lock:
            inode = (info.st_dev, info.st_ino)
            if inode in self._writers:
                self._moved[inode] = path

    def stamp(self, path: Path) -> int:
        """The stamp of the file a finished upload left at `path` (0: never opened here, or
        gone); its ingest `claim`s it with this stamp."""
        try:
            info = os.stat(path)
        except OSError:
            return 0
        with self._lock:
            return self._opened.get((info.st_dev, info.st_ino), (0, 0.0))[0]

    def writing(self, path: Path) -> bool:
        """Whether a session has the file at `path` open for writing (tests, and logs)."""
        try:
            info = os.stat(path)
        except OSError:
            return False
        with self._lock:
            return (info.st_dev, info.st_ino) in self._writers

    def claim(self, path: Path, stamp: int, aside: Path) -> _Inode | None:
        """Give the upload at `path` the private name `aside` for its ingest, unless a session
        writes it or opened it for writing since it was queued with `stamp` (None: not this
        upload's turn, or it is gone). The caller ends the claim with `finish`."""
        private_dir(aside.parent)
        with self._lock:
            try:
                info = os.stat(path)
            except OSError:
                return None
            inode = (info.st_dev, info.st_ino)
            if inode in self._writers or self._opened.get(inode, (0, 0.0))[0] != stamp:
                return None
            try:
                os.link(path, aside)
            except OSError:
                return None
            self._claimed.add(inode)
            return inode

    def finish(self, path: Path, inode: _Inode, *, loaded: bool) -> None:
        """The ingest of a claimed file is over. A loaded upload goes, unless its name holds
        another file by now (a newer upload: its own turn comes); one not loaded stays where
        the partner left it. The caller removes the private name."""
        with self._lock:
            if loaded:
                _unlink_if(str(path), inode)
            self._claimed.discard(inode)
            if inode not in self._writers:
                self._opened.pop(inode, None)

    def _forget_stale(self) -> None:
        """Drop the stamps no session writes and no ingest claimed for STALE_SECONDS (under
        the lock)."""
        before = self._clock() - STALE_SECONDS
        for inode, (_stamp, at) in list(self._opened.items()):
            if at < before and inode not in self._writers and inode not in self._claimed:
                del self._opened[inode]

    def __len__(self) -> int:
        """How many files' stamps are kept (tests)."""
        with self._lock:
            return len(self._opened)


def _unlink_if(path: str, inode: _Inode) -> None:
    """Remove the name `path` if it still names this file (under the registry's lock)."""
    with contextlib.suppress(OSError):
        info = os.stat(path)
        if (info.st_dev, info.st_ino) == inode:
            os.unlink(path)
