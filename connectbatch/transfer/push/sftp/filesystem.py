"""The file system one SFTP channel sees (paramiko's `SFTPServerInterface`): the account's
home as `/` and nothing else.

Every client path is taken relative to the home; one that climbs out with `..`, holds a NUL
byte or (after `os.path.realpath`) leads outside through a symlink is refused with "permission
denied", and listings hide entries that lead outside. Read-only ("Pull from us") logins may
list, stat and download what we published (never a file still staged under a hidden or
in-flight name: `Account.shows`); every write, rename, remove, mkdir, rmdir and setstat is refused. A
file complete under a final name (closed, or renamed from an in-flight name, see
`connectbatch.transfer.naming`) is handed to the gateway here.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

from connectbatch.transfer.naming import is_in_flight
from connectbatch.transfer.push import quota
from connectbatch.transfer.push.gateway import Account
from connectbatch.transfer.push.sftp.guard import FilePlace, too_many_open_files
from connectbatch.transfer.push.sftp.handle import OpenFile, shrink_to
from connectbatch.transfer.push.sftp.protocol import (
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
    Refused,
    code_of,
    denied,
)
from connectbatch.transfer.push.writers import NEW_DIR_MODE, NEW_FILE_MODE, OpenWrites

if TYPE_CHECKING:
    from connectbatch.transfer.push.sftp.login import Login

log = logging.getLogger("connectbatch.transfer.push.sftp")

MAX_OPEN_FILES = 64  # per SFTP channel
# Per login, across all its sessions and channels (`guard.OpenFiles`): a client uploading or
# downloading holds one or two files per transfer; 64 leaves room for parallel tools, and a
# login cannot take more than a small share of the process's descriptors (1,024 soft limit).
MAX_OPEN_FILES_PER_LOGIN = 64
TAKEN_REMEMBERED = 256  # uploads per SFTP channel whose late SETSTAT is answered (see chattr)


class ConfinedFs(paramiko.SFTPServerInterface):  # type: ignore[misc]
    """The file system one SFTP channel sees: the account's home as `/`, nothing else."""

    def __init__(self, login: Login, *args: Any, **kwargs: Any) -> None:
        super().__init__(login, *args, **kwargs)
        if login.account is None:  # never: channels are refused before login
            raise paramiko.SSHException("SFTP requested before login")
        self.login = login
        self.account: Account = login.account
        self.gateway = login.server.gateway
        self.root = os.path.realpath(self.account.home)
        # Files open for writing in this push root (a push home is `<push root>/<id>`).
        self.writes = OpenWrites.of(self.account.home.parent)
        self.open_files: set[OpenFile] = set()
        # Uploads of this channel handed to the gateway, most recent last, as they were then
        # (`uploaded`): a late SETSTAT (`chattr`) or STAT (`stat`) of one taken in answers.
        self.taken: dict[str, paramiko.SFTPAttributes | None] = {}

    # --- paths -----------------------------------------------------------------------------------

    def _parts(self, path: str) -> list[str]:
        """The client's path as components below the virtual root; refuses escapes and NULs,
        and (a read-only login) names it may not see, as if absent (`Account.shows`)."""
        if "\x00" in path:
            raise denied()
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise denied()
                parts.pop()
            else:
                parts.append(part)
        if not all(self.account.shows(part) for part in parts):
            raise Refused(SFTP_NO_SUCH_FILE)
        return parts

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def _entry(self, path: str) -> str:
        """Host path of the entry the client names: its parent fully resolved (and inside the
        home), its own name kept as is, so that remove/rename act on a link, not its target.
        An entry that is itself a link leading outside is refused too."""
        parts = self._parts(path)
        if not parts:
            return self.root
        parent = os.path.realpath(os.path.join(self.root, *parts[:-1]))
        if not self._inside(parent):
            raise denied()
        entry = os.path.join(parent, parts[-1])
        if not self._inside(os.path.realpath(entry)):
            raise denied()
        return entry

    def _target(self, path: str) -> str:
        """Host path of what the client's path finally leads to (links followed), inside home."""
        real = os.path.realpath(os.path.join(self.root, *self._parts(path)))
        if not self._inside(real):
            raise denied()
        return real

    def virtual(self, host_path: str) -> str:
        """How the client sees a host path inside the home (for logs and messages)."""
        relative = os.path.relpath(host_path, self.root)
        return "/" if relative == "." else "/" + relative.replace(os.sep, "/")

    def _writable(self) -> None:
        if not self.account.writable:
            raise denied("this login is read-only")

    def still_allowed(self) -> None:
        """Refuse (and end the session) once the login's credential or connection is gone:
        asked when a file is opened (to read too: a deleted "Pull from us" connection's
        session went on downloading, its partner offboarded; outbound audit), a folder listed,
        and an upload completes, as the account was resolved once, at login
        (`Gateway.revoked`). Raises `Refused`, which paramiko's request loop does not catch:
        ours replies with the sentence (a returned status code would reach the client as a
        bare "permission denied")."""
        revoked = getattr(self.gateway, "revoked", None)
        why = revoked(self.account) if revoked is not None else None
        if why:
            log.warning("refused a request by %r: %s", self.account.username, why)
            self.login.revoke(why)
            raise denied(why)

    # --- SFTPServerInterface ---------------------------------------------------------------------

    def canonicalize(self, path: str) -> str:
        """REALPATH: the normalised virtual path; a path above `/` is shown as `/` (the answer
        is only a name, it grants nothing)."""
        if "\x00" in path:
            return "/"
        return posixpath.normpath("/" + path).replace("//", "/") or "/"

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        self.still_allowed()
        try:
            folder = self._target(path)
            entries: list[paramiko.SFTPAttributes] = []
            with os.scandir(folder) as listing:
                for item in listing:
                    if not self.account.shows(item.name):
                        continue  # not published yet: a read-only login never sees it
                    try:
                        real = os.path.realpath(item.path)
                        if not self._inside(real):
                            continue  # a link out of the home: not shown at all
                        entries.append(paramiko.SFTPAttributes.from_stat(os.stat(real), item.name))
                    except OSError:
                        continue  # vanished meanwhile, or a dangling link
            return entries
        except Refused as exc:
            return exc.code
        except OSError as exc:
            return code_of(exc)

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        """A file this channel uploaded and the gateway has taken in since answers as it was
        when uploaded: clients check what they sent right after it (paramiko's `put` compares
        the size; WinSCP reads the times), and a small file is loaded and gone by then."""
        target = ""
        try:
            target = self._target(path)
            return paramiko.SFTPAttributes.from_stat(os.stat(target), posixpath.basename(path))
        except Refused as exc:
            return exc.code
        except OSError as exc:
            known = self.taken.get(target) if exc.errno == errno.ENOENT else None
            return known if known is not None else code_of(exc)

    def lstat(self, path: str) -> paramiko.SFTPAttributes | int:
        """Like stat: links inside the home show as what they point to, links out are refused."""
        return self.stat(path)

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> OpenFile | int:
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC))
        if writing and not self.account.writable:
            return SFTP_PERMISSION_DENIED
        self.still_allowed()  # raised: the channel's loop replies with the sentence
        place = self._place()  # raised: the channel's loop replies with the sentence
        try:
            return self._open(path, flags, writing, place)
        except Refused as exc:
            return exc.code
        except OSError as exc:
            if exc.errno in (errno.EBUSY, errno.EDQUOT) and exc.strerror:  # ours: replied as said
                raise Refused(SFTP_FAILURE, exc.strerror) from exc
            return code_of(exc)

    def _place(self) -> FilePlace:
        """A place for one more open file, in this channel and in its login's count
        (`guard.OpenFiles`); refused with a sentence naming the limit (a bare "Failure" left
        a partner guessing)."""
        if len(self.open_files) >= MAX_OPEN_FILES:
            raise Refused(SFTP_FAILURE, f"too many open files on this channel (at most {MAX_OPEN_FILES})")
        counted = self.login.server.open_files
        place = counted.take(self.account.username)
        if place is None:  # said through the log's budget: a client can ask thousands of times
            self.login.server.quiet.log(
                "open-files",
                logging.WARNING,
                "refused an open by %r from %s: it holds %d open files",
                self.account.username,
                self.login.peer,
                counted.per_login,
            )
            raise Refused(SFTP_FAILURE, too_many_open_files(counted.per_login))
        return place

    def _open(self, path: str, flags: int, writing: bool, place: FilePlace) -> OpenFile:
        """Open the file in its place (given back however the opening fails, or by `forget`
        when the file ends)."""
        counted = self.login.server.open_files
        try:
            entry = self._entry(path)
            if entry == self.root:
                raise Refused(SFTP_FAILURE, "is a directory")
            target = os.path.realpath(entry)
            allowed = os.O_RDONLY | os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT
            allowed |= os.O_TRUNC | os.O_EXCL
            # O_NONBLOCK: opening a FIFO someone planted must not hang the session.
            wanted = (flags & allowed) | os.O_CLOEXEC | os.O_NONBLOCK
            writer = None
            if writing and not os.path.lexists(target):  # a new entry: as a new folder is
                full = quota.crowded(Path(self.root))
                if full is not None:  # the sentence goes out (`open`), not a bare "Failure"
                    raise OSError(errno.EDQUOT, full)
            if writing:  # never loaded nor removed while open (`push.writers`)
                fd, writer = self.writes.open(target, wanted, NEW_FILE_MODE)
            else:
                fd = os.open(target, wanted, NEW_FILE_MODE)
            upload = None
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise Refused(SFTP_FAILURE, "not a regular file")
                if writing:  # counted in the push folder from now on (`push.quota`)
                    upload = self.gateway.quota.start(self.account.home, self.account.push_quota_bytes, fd)
            except BaseException:
                os.close(fd)
                self.writes.end(writer)
                raise
            handle = OpenFile(self, fd, flags, target, writing, info.st_size, upload, writer, place)
        except BaseException:
            counted.give_back(place)
            raise
        self.open_files.add(handle)
        return handle

    def remove(self, path: str) -> int:
        return self._do(path, lambda entry: os.remove(entry))

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        # a full push folder is refused with its reason (raised: the channel replies with it);
        # a bounded scan, and folders are made rarely
        full = quota.crowded(Path(self.root)) if self.account.writable else None
        if full is not None:
            raise Refused(SFTP_FAILURE, full)
        return self._do(path, lambda entry: os.mkdir(entry, NEW_DIR_MODE))

    def rmdir(self, path: str) -> int:
        return self._do(path, lambda entry: os.rmdir(entry))

    def _do(self, path: str, action: Any) -> int:
        try:
            self._writable()
            entry = self._entry(path)
            if entry == self.root:
                raise denied()
            action(entry)
            return SFTP_OK
        except Refused as exc:
            return exc.code
        except OSError as exc:
            return code_of(exc)

    def rename(self, oldpath: str, newpath: str) -> int:
        """SFTP v3 rename: fails if the new name exists (as OpenSSH's server does)."""
        return self._rename(oldpath, newpath, replace=False)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """posix-rename@openssh.com: replaces an existing file, atomically."""
        return self._rename(oldpath, newpath, replace=True)

    def _rename(self, oldpath: str, newpath: str, *, replace: bool) -> int:
        if self.account.writable and not is_in_flight(posixpath.basename(newpath)):
            self.still_allowed()  # a rename to a final name completes an upload
        try:
            self._writable()
            old, new = self._entry(oldpath), self._entry(newpath)
            if self.root in (old, new):
                raise denied()
            if not replace and os.path.lexists(new):
                raise Refused(SFTP_FAILURE, "a file with the new name already exists")
            os.rename(old, new)
        except Refused as exc:
            return exc.code
        except OSError as exc:
            return code_of(exc)
        self.writes.renamed(new)  # another session's writer reports it under this name
        still_open = [f for f in self.open_files if f.entry == old]
        for handle in still_open:  # reported when closed, under its new name
            handle.entry = new
        if not still_open and os.path.isfile(new) and not os.path.islink(new):
            self.uploaded(new)
        return SFTP_OK

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        """SETSTAT: a size is applied when it shrinks or keeps the file and refused when it
        would grow it (`handle.shrink_to`; answering OK without truncating left old bytes
        behind the new ones); modification times are applied; mode and owner are accepted
        and ignored: clients send them after uploads (`put -p`) and must not fail for them.
        Nor when times come after the upload was ingested and removed (WinSCP sets the time
        by path after the close or the rename from `.filepart`, one round trip later): for a
        file this channel uploaded, a missing file is a file already taken in. A refused
        size is raised (`Refused`, `OSError`): the channel's loop replies with the sentence."""
        try:
            self._writable()
            target = self._target(path)
        except Refused as exc:
            return exc.code
        sized = bool(attr._flags & attr.FLAG_SIZE)
        if sized:
            self._truncate(target, attr.st_size)
        code = self.apply_times(target, attr)
        if code == SFTP_NO_SUCH_FILE and target in self.taken and not sized:
            return SFTP_OK
        return code

    def _truncate(self, target: str, size: int) -> None:
        """A file shrunk by path is written: opened through `writes` like any write (so never
        a file being loaded), then reported like a closed upload, as its contents changed
        under its name (its earlier report no longer claims it: it was opened since)."""
        self.still_allowed()
        if size == os.stat(target).st_size:
            return  # nothing to change (a client sending every attribute back)
        flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK
        fd, writer = self.writes.open(target, flags, NEW_FILE_MODE)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Refused(SFTP_FAILURE, "not a regular file")
            shrink_to(fd, size)
        finally:
            os.close(fd)
            moved = self.writes.end(writer)
        still_open = [f for f in self.open_files if f.entry == target]
        for handle in still_open:  # they write on from the new end, and report it when closed
            handle.size = min(handle.size, size)
        if not still_open:
            self.uploaded(moved or target)

    def apply_times(self, host_path: str, attr: paramiko.SFTPAttributes) -> int:
        if attr._flags & attr.FLAG_AMTIME:
            try:
                os.utime(host_path, (attr.st_atime, attr.st_mtime))
            except OSError as exc:
                return code_of(exc)
        return SFTP_OK

    def readlink(self, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    # --- uploads ---------------------------------------------------------------------------------

    def forget(self, handle: OpenFile) -> None:
        """The file ended (closed, failed or cut off): its login may open another."""
        self.open_files.discard(handle)
        self.login.server.open_files.give_back(handle.place)

    def uploaded(self, entry: str) -> None:
        """A file is complete under a final name: hand it to the gateway (never fails the
        client's request: the bytes are safely on disk either way)."""
        if is_in_flight(os.path.basename(entry)):
            return
        log.info("upload complete: %s by %r", self.virtual(entry), self.account.username)
        self.taken.pop(entry, None)
        try:  # as uploaded: answered to a STAT once it is taken in (`stat`)
            self.taken[entry] = paramiko.SFTPAttributes.from_stat(os.stat(entry), os.path.basename(entry))
        except OSError:
            self.taken[entry] = None
        while len(self.taken) > TAKEN_REMEMBERED:
            del self.taken[next(iter(self.taken))]
        try:
            self.gateway.upload_complete(self.account, Path(entry))
        except Exception:
            log.exception("could not hand %s to the gateway", self.virtual(entry))
