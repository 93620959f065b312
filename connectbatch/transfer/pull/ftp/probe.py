"""Asking an FTP server about one listed name when its listing did not say enough: SIZE for
its size, CWD for whether it is a folder. Used by the LIST/NLST fallback only (MLSD says
both), and only for names that match the connection's pattern.

A refusal of SIZE is not proof that a name is a folder. Servers refuse SIZE in ASCII mode
(`550 SIZE not allowed in ASCII mode`: pyftpdlib, ProFTPD), refuse it altogether (500/502),
or answer 4xx for a moment; a file behind such a refusal must still be taken, its size then
learnt from the download. Only a name we can CWD into is a folder. A *link* whose SIZE the
server refuses in binary mode leads to a folder or to nothing, as the SFTP pull sees it, and
is left out as well.

Network failures and `421` (the server is closing) are not answers about a file: they
propagate to the transport, which turns them into a failed run.
"""

from __future__ import annotations

import datetime as dt
import ftplib
import logging
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from connectbatch.transfer.base import RemoteFile, server_number
from connectbatch.transfer.pull.ftp.listing import Entry, TimePrecision, parse_ftp_time

log = logging.getLogger("connectbatch.transfer.pull.ftp")

# `RemoteFile.extra["listed_by"]` of a file whose size and time came from MLSD (checked again
# with MLST); a link MLSD listed as itself is "SIZE": sized and timed one by one (`listed_file`).
MLSD, PROBED = "MLSD", "SIZE"

# Words in a SIZE refusal that blame the transfer mode or the command, not the file.
_NOT_ABOUT_THE_FILE = re.compile(
    r"ascii|binary|\bmode\b|\btype\b|not (?:allowed|implemented|understood)", re.I
)


@dataclass(frozen=True)
class Sized:
    """What the server told about one listed name."""

    is_file: bool
    size: int | None  # None: the server would not say; the download tells
    reply: str = ""  # the server's words when it refused SIZE


def size_of(ftp: ftplib.FTP, path: str, kind: str, folder: str) -> Sized:
    """SIZE of `path` (the session must be in TYPE I), and when the server refuses it,
    whether the name is still a file to take. `kind` is the listing's ("link", "unknown",
    "file"); `folder` is where to CWD back to after probing a name for a folder."""
    try:
        size = ftp.size(path)
    except (ftplib.error_perm, ftplib.error_temp) as exc:
        reply = str(exc).strip()
        if reply.startswith("421"):
            raise
    else:
        if size is not None:
            return Sized(True, size)
        reply = "SIZE answered without a size"
    if kind == "link" and reply.startswith("5") and _about_the_file(reply):
        log.info("left out %s: a link to a folder or to nothing (SIZE: %s)", path, reply)
        return Sized(False, None, reply)
    if is_folder(ftp, path, folder):
        return Sized(False, None, reply)
    log.info("taking %s with its size unknown (SIZE: %s)", path, reply)
    return Sized(True, None, reply)


def listed_file(
    ftp: ftplib.FTP, folder: str, entry: Entry, mdtm: Callable[[ftplib.FTP, str], dt.datetime | None]
) -> Entry | None:
    """`entry` (matching the pattern) as the file to take, sized (`size_of`, where the listing
    did not say, or said it of a link) and timed by MDTM where the server has it; None for a
    folder, or a link to one or to nothing."""
    path = posixpath.join(folder, entry.name)
    size = entry.size
    if entry.kind != "file" or size is None:
        sized = size_of(ftp, path, entry.kind, folder)
        if not sized.is_file:
            return None
        size = sized.size
    exact = mdtm(ftp, path)
    mtime, precision = (exact, TimePrecision.EXACT) if exact else (entry.mtime, entry.precision)
    return Entry(entry.name, "file", size, mtime, precision, probed=entry.kind == "link")


def now(
    ftp: ftplib.FTP, remote: RemoteFile, wire: str, mdtm: Callable[[ftplib.FTP, str], dt.datetime | None]
) -> tuple[int | None, dt.datetime | None]:
    """The file's size and time as the server tells them now, in the listing's own terms:
    MLST for a file MLSD listed (the same facts in the same time base; a server's MDTM may be
    in local time where its MLSD is UTC), else SIZE, and MDTM where the listing's time came
    from MDTM (a LIST line's time is in the server's zone, which MDTM's is not)."""
    if remote.extra.get("listed_by") == MLSD:
        return _mlst(ftp, wire)
    exact = remote.extra.get("mtime_precision") == TimePrecision.EXACT
    return size_now(ftp, wire), mdtm(ftp, wire) if exact else None


def _mlst(ftp: ftplib.FTP, path: str) -> tuple[int | None, dt.datetime | None]:
    """Size and modify time from MLST's facts (RFC 3659), (None, None) when refused."""
    try:
        reply = ftp.sendcmd(f"MLST {path}")
    except (ftplib.error_perm, ftplib.error_temp) as exc:
        if str(exc).startswith("421"):
            raise
        return None, None
    for line in reply.splitlines()[1:]:
        if line.startswith(" "):  # " type=file;size=12;modify=20261206140509; /in/a.csv"
            pairs = (fact.split("=", 1) for fact in line[1:].split(" ", 1)[0].split(";") if "=" in fact)
            facts = {key.lower(): value for key, value in pairs}
            return server_number(facts.get("size")), parse_ftp_time(facts.get("modify", ""))
    return None, None


def size_now(ftp: ftplib.FTP, path: str) -> int | None:
    """SIZE of `path` in TYPE I, or None when the server will not say (a 421 still raises)."""
    ftp.voidcmd("TYPE I")
    try:
        return ftp.size(path)
    except (ftplib.error_perm, ftplib.error_temp) as exc:
        if str(exc).startswith("421"):
            raise
        return None


def is_folder(ftp: ftplib.FTP, path: str, folder: str) -> bool:
    """Whether CWD into `path` succeeds (then back to `folder`)."""
    try:
        ftp.cwd(path)
    except (ftplib.error_perm, ftplib.error_temp) as exc:
        if str(exc).startswith("421"):
            raise
        return False
    ftp.cwd(folder)
    return True


def _about_the_file(reply: str) -> bool:
    """A 5xx SIZE reply that says something about the file, not about the mode or the
    command (500/502/504 are the command's)."""
    return reply[:3] not in ("500", "502", "504") and not _NOT_ABOUT_THE_FILE.search(reply)
