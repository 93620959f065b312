"""Reading what an FTP server sends, bounded: listings (`pull.limits`) and replies.

ftplib's `mlsd()` and `nlst()` collect every line of the listing in memory before they return,
however many the server sends, and `retrlines` with a list's `append` does the same: a server
that never ends a listing grew the pull without bound. Here each line is counted as it comes,
and the listing stops at `limits.MAX_LISTED_ENTRIES`. The error to raise then is the caller's
(`too_many`): it knows the host, and that its login is out of step (the listing's closing reply
is still due), so it drops the connection.

A reply is bounded too (`BoundedReplies`): ftplib reads a multi-line reply (`211-` ... `211 `)
until its last line comes, however many come before it, and a server that never sends that
line grew the pull's memory as an endless listing did.
"""

from __future__ import annotations

import ftplib
from collections.abc import Callable

from connectbatch.errors import TransportError
from connectbatch.transfer.pull.limits import MAX_LISTED_ENTRIES

# FEAT, the longest reply we ask for, has a few dozen lines on any server.
MAX_REPLY_LINES = 10_000


class BoundedReplies(ftplib.FTP):
    """ftplib.FTP reading a multi-line reply of at most MAX_REPLY_LINES lines."""

    def getmultiline(self) -> str:
        lines = [self.getline()]
        if lines[0][3:4] == "-":
            code = lines[0][:3]
            while not (lines[-1][:3] == code and lines[-1][3:4] != "-"):  # the first has "-"
                if len(lines) >= MAX_REPLY_LINES:  # the login is out of step: `_fail` drops it
                    raise ftplib.error_proto(
                        f"{code} reply of more than {MAX_REPLY_LINES:,} lines: stopped reading it"
                    )
                lines.append(self.getline())
        return "\n".join(lines)


def lines(ftp: ftplib.FTP, command: str, too_many: Callable[[], TransportError]) -> list[str]:
    """The lines the server sends for `command` (LIST, MLSD, NLST with or without a path),
    at most MAX_LISTED_ENTRIES of them: one more raises `too_many()`."""
    found: list[str] = []

    def take(line: str) -> None:
        if len(found) >= MAX_LISTED_ENTRIES:
            raise too_many()
        found.append(line)

    ftp.retrlines(command, take)
    return found


def mlsd(
    ftp: ftplib.FTP, folder: str | None, too_many: Callable[[], TransportError]
) -> list[tuple[str, dict[str, str]]]:
    """`ftp.mlsd(folder)`, bounded: (name, facts with lower-case keys) per line, as ftplib
    splits them (`fact=value;...; name`)."""
    entries: list[tuple[str, dict[str, str]]] = []
    for line in lines(ftp, f"MLSD {folder}" if folder else "MLSD", too_many):
        found, _, name = line.rstrip("\r\n").partition(" ")
        facts: dict[str, str] = {}
        for fact in found[:-1].split(";"):
            key, _, value = fact.partition("=")
            facts[key.lower()] = value
        entries.append((name, facts))
    return entries


def nlst(ftp: ftplib.FTP, folder: str | None, too_many: Callable[[], TransportError]) -> list[str]:
    """`ftp.nlst(folder)`, bounded."""
    return lines(ftp, f"NLST {folder}" if folder else "NLST", too_many)
