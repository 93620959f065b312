"""File-name rules every transfer shares, pull and push alike: which names are still being
written, what a connection's wildcard matches, and the name a file gets when archived.

Each rule lives here once; `tests/unit/test_naming.py` fails if a transport grows its own copy.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import unicodedata
from collections.abc import Callable, Container

# Names that mean "still being written" (by sftp/scp clients, WinSCP, browsers, rsync-like
# tools): never taken by a pull, never ingested by a push, whatever the pattern says. So is
# a dot-name: lftp uploads to `.in.NAME` and rsync to `.NAME.XXXXXX` before renaming (a push
# audit: lftp's temporary name was loaded, and the file it became was left beside it).
IN_FLIGHT_SUFFIXES = (".part", ".tmp", ".filepart", ".crdownload", ".partial")


def is_in_flight(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(IN_FLIGHT_SUFFIXES)


def hidden_from_readers(name: str) -> bool:
    """A name a read-only ("Pull from us") login never lists, stats or downloads: a dot-name
    (what we write there is staged under one: an export `.export-….csv.tmp` until its ledger
    row commits, a status file `.tmp-status-…`, results `.tmp-…`) or an in-flight name. A
    partner collecting everything would otherwise take a file before it is complete, or
    before its rows are recorded as sent, and get them again once it is published."""
    return is_in_flight(name)


def is_entry_name(name: str) -> bool:
    """Whether a name a server listed can be a file of the listed folder: one path component,
    not `.` or `..`, no NUL. A broken or hostile server listing `../x.csv` or `/etc/x.csv`
    (which `*.csv` matches: `*` takes `/` too) made a pull fetch, and then delete or archive,
    a file outside the connection's folder; one listing `key\\0.csv` had a server written in C
    open `key`. Such a name is left out of the listing, as a folder is."""
    return name not in ("", ".", "..") and "/" not in name and "\x00" not in name


# Wrappers the parser unpacks (gzip, a ZIP with one member): a file in one matches the
# connection's pattern by the name of what is inside, as well as by its own name.
UNPACKED_SUFFIXES = (".gz", ".zip")


def matches(name: str, pattern: str, inner: str | None = None) -> bool:
    """The seed's wildcard: `*` any sequence, `?` one character; nothing else is special,
    and the match is case-sensitive (partners' file names are). In-flight names never match.

    Name and pattern are compared in Unicode's composed form (NFC): a Mac writes `é` as `e`
    plus a combining accent (NFD), a pattern typed elsewhere has the single character, and
    the two must read as the same name (`?` then takes one `é` either way).

    A compressed file matches by its inner name too, since the parser unpacks it: for every
    transport the name without its `.gz`/`.zip` suffix (`calls_1.csv.zip` under
    `calls_*.csv`), and `inner` when the caller could look inside (the single member of a
    ZIP attachment, which e-mail has in hand; SFTP/FTP listings cannot see it)."""
    if is_in_flight(name):
        return False
    name = unicodedata.normalize("NFC", name)
    escaped = unicodedata.normalize("NFC", pattern).replace("[", "[[]")
    if fnmatch.fnmatchcase(name, escaped):
        return True
    lowered = name.lower()
    for suffix in UNPACKED_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            if fnmatch.fnmatchcase(name[: -len(suffix)], escaped):
                return True
            if inner is not None and not is_in_flight(inner):
                inner_name = inner.replace("\\", "/").rsplit("/", 1)[-1]
                return fnmatch.fnmatchcase(unicodedata.normalize("NFC", inner_name), escaped)
    return False


def readable_name(raw: bytes) -> str:
    """A remote file name as text for the ledger, the pattern and people: UTF-8 when the bytes
    are UTF-8, else ISO-8859-1 (the names old Windows and Unix servers still write, where
    `caf\\xe9.csv` means `café.csv`). Always valid text, so one odd name in a partner's folder
    cannot stop the listing; the transport keeps the raw bytes to fetch the file by."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# A compressed file keeps its whole extension together: calls.csv.gz -> calls_<stamp>.csv.gz.
COMPRESSED_SUFFIXES = (".gz", ".zip", ".bz2", ".xz", ".zst")


def split_extension(name: str) -> tuple[str, str]:
    """`calls.csv` -> (`calls`, `.csv`); `calls.csv.gz` -> (`calls`, `.csv.gz`); a dot file or
    a name without a dot has no extension."""
    stem, dot, extension = name.rpartition(".")
    if not stem:
        return name, ""
    suffix = dot + extension
    if suffix.lower() in COMPRESSED_SUFFIXES:
        inner_stem, inner_dot, inner = stem.rpartition(".")
        if inner_stem and inner:
            return inner_stem, f"{inner_dot}{inner}{suffix}"
    return stem, suffix


def archived_name(name: str, taken: Container[str] | Callable[[str], bool], now: dt.datetime) -> str:
    """The name a file gets in an archive folder: its own name when that is free there, else
    `stem_<UTC stamp>.ext`, then `stem_<UTC stamp>-2.ext`, ... — an archive never overwrites.

    `taken` is the set of names already in the folder, or a function that asks the server.
    """
    exists = taken if callable(taken) else taken.__contains__
    if not exists(name):
        return name
    stem, extension = split_extension(name)
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for counter in range(1, 1000):
        extra = f"-{counter}" if counter > 1 else ""
        candidate = f"{stem}_{stamp}{extra}{extension}"
        if not exists(candidate):
            return candidate
    raise FileExistsError(f"no free archive name for {name}: 1,000 stamped copies exist")
