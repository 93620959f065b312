"""Reading a partner's SFTP folder with every name as the bytes the server sent.

paramiko's `listdir_attr` decodes each name as strict UTF-8 and raises UnicodeDecodeError on
the first that is not (a file uploaded from an old Windows machine: `caf\\xe9.csv`). That
error is no network error, so a single such name crashed the whole pull, every run, whatever
the pattern. Here the names stay bytes: each entry carries its text form for the ledger and
the pattern (`naming.readable_name`) and the raw bytes the file is fetched, deleted or
archived by. The requests are paramiko's own (`SFTPClient._request`, pinned by
tests/unit/test_paramiko_contract.py).

A listing stops at `limits.MAX_LISTED_ENTRIES`: a server sending READDIR batches without end
grew the pull's memory until its deadline (`pull.limits`).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_HANDLE, CMD_NAME, CMD_OPENDIR, CMD_READDIR, SFTPError

from connectbatch.errors import TransportError
from connectbatch.transfer.naming import readable_name
from connectbatch.transfer.pull.limits import MAX_LISTED_ENTRIES, too_many_entries


@dataclass(frozen=True)
class Listed:
    """One entry of a folder: its name as text, its name as sent, its (lstat) attributes."""

    name: str
    raw: bytes
    attributes: paramiko.SFTPAttributes


def list_folder(client: paramiko.SFTPClient, folder: bytes, where: str) -> list[Listed]:
    """Every entry of `folder` but `.` and `..`, in the server's order. Raises what paramiko
    raises for the folder itself (OSError with the errno of the server's status), and a
    TransportError naming `where` (the server) past MAX_LISTED_ENTRIES."""
    kind, msg = client._request(CMD_OPENDIR, folder)
    if kind != CMD_HANDLE:
        raise SFTPError("Expected handle")
    handle = msg.get_binary()
    found: list[Listed] = []
    while True:
        try:
            kind, msg = client._request(CMD_READDIR, handle)
        except EOFError:  # paramiko's way of saying the folder has no more entries
            break
        if kind != CMD_NAME:
            raise SFTPError("Expected name response")
        for _ in range(msg.get_int()):
            raw = msg.get_string()
            longname = msg.get_string()
            attributes = paramiko.SFTPAttributes._from_msg(msg, None, longname)
            if raw not in (b".", b".."):
                if len(found) >= MAX_LISTED_ENTRIES:  # the session is closed with the run
                    raise TransportError(too_many_entries(where, readable_name(folder)))
                found.append(Listed(readable_name(raw), raw, attributes))
    client._request(CMD_CLOSE, handle)  # after an error the session is replaced anyway
    return found


def wire_path(text: str) -> bytes:
    """The bytes of a path kept as text with its raw name surrogate-escaped (a RemoteFile's
    `ref`), to send back to the server as it sent them."""
    return text.encode("utf-8", "surrogateescape")


def ref_of(folder: str, raw: bytes) -> str:
    """A RemoteFile `ref`: the path with the name exactly as the server sent it."""
    return (
        wire_path(folder).rstrip(b"/").decode("utf-8", "surrogateescape")
        + "/"
        + raw.decode("utf-8", "surrogateescape")
    )


def regular_file(client: paramiko.SFTPClient, folder: str, entry: Listed) -> paramiko.SFTPAttributes | None:
    """The attributes of the regular file `entry` is, or leads to as a symlink (the server's
    STAT follows it), else None: a folder, a link that leads nowhere or to a folder, or one
    our login may not follow. A partner whose export job links its files into the folder is
    served as one that copies them (FTP servers list a link as the file, and the FTP pull
    took those already); fetching, deleting and archiving act on the link's own name."""
    found: paramiko.SFTPAttributes | None = entry.attributes
    if found is not None and found.st_mode is not None and stat.S_ISLNK(found.st_mode):
        try:
            found = client.stat(wire_path(folder).rstrip(b"/") + b"/" + entry.raw)  # bytes: as sent
        except OSError:  # dangling, a loop, or a target our login may not see
            return None
    if found is None or found.st_mode is None or not stat.S_ISREG(found.st_mode):
        return None
    return found
