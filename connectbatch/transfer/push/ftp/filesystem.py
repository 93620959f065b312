"""Confinement of an FTP session to its account's home (pyftpdlib's `AbstractedFS`).

pyftpdlib maps client paths into the home folder; `ConfinedFS` also checks the resolved path
of every operation (a planted symlink pointing out of the home is neither listed nor followed),
opens files for writing with O_NOFOLLOW, and never shows where a symlink points. A read-only
("Pull from us") login does not see files we have not published yet (`Account.shows`). A file it
opens for writing counts as such (`push.writers`) until the session says the upload ended.

A path with a control character (C0, DEL, C1) is refused before it reaches the file system
(`refused_path`, answered 501 by the session): a NUL made `os` raise ValueError, which dropped
the session, and CR, LF or an escape sequence in a name was echoed raw in replies and
listings, where it forges reply or listing lines and reaches the partner's terminal. For the
same reason a listing leaves out names with such characters (made by other means).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pyftpdlib.filesystems import AbstractedFS, FilesystemError

from connectbatch.transfer.push import quota
from connectbatch.transfer.push.writers import NEW_DIR_MODE, NEW_FILE_MODE, OpenWrites, Writing

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def refused_path(path: str) -> str | None:
    """Why a client's path is refused (it holds a control character), or None."""
    found = _CONTROL.search(path)
    if found is None:
        return None
    return f"Path refused: it contains the control character U+{ord(found.group()):04X}."


class ConfinedFS(AbstractedFS):  # type: ignore[misc]
    """pyftpdlib's virtual filesystem rooted at the account's home, plus resolved-path
    checks on every operation.

    pyftpdlib already normalises client paths into the root and checks `validpath` for
    most commands; repeating the check here keeps a planted symlink from leaking anything
    through the operations it does not cover (listings show the targets of links and
    `stat` follows them), and makes confinement a property of the filesystem object rather
    than of each command handler.
    """

    def validpath(self, path: str) -> bool:
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

    def _require(self, *paths: str) -> None:
        for path in paths:
            if not self.validpath(path):
                raise FilesystemError("No such file or directory (outside your folder)")
            self._shown(path)

    def _shown(self, path: str) -> None:
        """A read-only login's path to a name it may not see (a file we have not published
        yet, `Account.shows`) is answered as absent."""
        account = getattr(self.cmd_channel, "account", None)
        if account is None or account.writable:
            return
        relative = os.path.relpath(os.path.normpath(path), os.path.normpath(self.root))
        if relative != "." and not all(account.shows(p) for p in relative.split(os.sep)):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self.fs2ftp(path))

    def format_mlsx(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        """pyftpdlib's MLSD/MLST lines with the `unix.mode` fact in octal digits (`0644`, as
        RFC 3659's servers write it): it wrote Python's `0o644`, which lftp's mirror read as
        mode 0 and gave every downloaded export no permission at all (outbound audit)."""
        for line in super().format_mlsx(*args, **kwargs):
            yield line.replace(b"unix.mode=0o", b"unix.mode=0")

    def lstat(self, path: str) -> os.stat_result:
        self._shown(path)  # LIST and MLST of a single name
        return super().lstat(path)  # type: ignore[no-any-return]

    def isfile(self, path: str) -> bool:  # MDTM asks it first
        try:
            self._shown(path)
        except FileNotFoundError:
            return False
        return bool(super().isfile(path))

    def __init__(self, root: str, cmd_channel: Any) -> None:
        super().__init__(root, cmd_channel)
        # Files this session opened for writing whose upload has not ended yet.
        self.writing: list[Writing] = []

    def open(self, filename: str, mode: str) -> IO[Any]:
        self._require(filename)
        if any(flag in mode for flag in "wa+"):
            return open(filename, mode, opener=self._open_for_writing)
        return open(filename, mode)

    def _open_for_writing(self, path: str, flags: int) -> int:
        """`open()` opener that refuses to write through a symlink (checked atomically) and
        counts the file as open for writing: no ingest reads or removes it meanwhile. A push
        home is `<push root>/<connection id>`."""
        writes = OpenWrites.of(Path(self.root).parent)
        if not os.path.lexists(path):  # a new entry: refused past 10,000, as a new folder is
            full = quota.crowded(Path(self.root))
            if full is not None:
                raise FilesystemError(full)
        try:
            fd, writing = writes.open(path, flags | os.O_NOFOLLOW, NEW_FILE_MODE)
        except OSError as exc:
            if exc.errno == errno.EBUSY and exc.strerror:  # `push.writers` says why: the 550 says it
                raise FilesystemError(exc.strerror) from exc
            raise
        self.writing.append(writing)
        return fd

    def stop_writing(self) -> str | None:
        """The session's upload ended (complete, broken or refused): its file may be loaded.
        The name another session gave the file meanwhile, if one did (`OpenWrites.renamed`)."""
        writes = OpenWrites.of(Path(self.root).parent)
        moved: str | None = None
        while self.writing:
            moved = writes.end(self.writing.pop()) or moved
        return moved

    def mkstemp(self, suffix: str = "", prefix: str = "", dir: str | None = None, mode: str = "wb") -> Any:
        self._require(dir or self.root)
        return super().mkstemp(suffix=suffix, prefix=prefix, dir=dir, mode=mode)

    def chdir(self, path: str) -> None:
        self._require(path)
        super().chdir(path)

    def mkdir(self, path: str) -> None:
        self._require(path)
        full = quota.crowded(Path(self.root))  # past 10,000 entries (inodes): see push.quota
        if full is not None:
            raise FilesystemError(full)
        os.mkdir(path, NEW_DIR_MODE)

    def listdir(self, path: str) -> list[str]:
        """Entries of a folder, without those that resolve outside the home (symlinks
        pointing out are not shown at all: not even their names or targets)."""
        self._require(path)
        account = getattr(self.cmd_channel, "account", None)
        return [
            name
            for name in super().listdir(path)
            if refused_path(name) is None
            and self.validpath(os.path.join(path, name))
            and (account is None or account.shows(name))
        ]

    def listdirinfo(self, path: str) -> list[str]:
        return self.listdir(path)

    def rmdir(self, path: str) -> None:
        self._require(path)
        super().rmdir(path)

    def remove(self, path: str) -> None:
        self._require(path)
        super().remove(path)

    def rename(self, src: str, dst: str) -> None:
        self._require(src, dst)
        super().rename(src, dst)
        OpenWrites.of(Path(self.root).parent).renamed(dst)  # a writer reports it under dst

    def chmod(self, path: str, mode: str) -> None:
        raise FilesystemError("Changing permissions is not allowed")

    def utime(self, path: str, timeval: float) -> None:
        raise FilesystemError("Changing modification times is not allowed")

    def stat(self, path: str) -> os.stat_result:
        self._require(path)
        return super().stat(path)  # type: ignore[no-any-return]

    def readlink(self, path: str) -> str:
        """Where a link points, as a path inside the home: the real location of the home
        is nobody's business."""
        self._require(path)
        return str(self.fs2ftp(os.path.realpath(path)))

    def getsize(self, path: str) -> int:
        self._require(path)
        return int(super().getsize(path))

    def getmtime(self, path: str) -> float:
        self._require(path)
        return float(super().getmtime(path))
