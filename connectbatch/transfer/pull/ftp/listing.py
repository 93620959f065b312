"""Reading FTP folder listings: MLSD/MDTM time stamps (RFC 3659) and the LIST lines servers
without MLSD send (Unix `ls -l` or DOS/IIS style). Pure functions of the text, no network."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from connectbatch.transfer.base import server_number
from connectbatch.transfer.naming import is_entry_name


class TimePrecision(StrEnum):
    """How much of a listed time the server said. `ls` shows a file older than six months
    by its date only (`Jun 18  2026`), so the same untouched file's LIST time drops from
    17:28 to 00:00 as it ages: a time known to the day must be compared by its date."""

    EXACT = "exact"  # MLSD, MDTM, `ls --full-time`
    MINUTE = "minute"  # LIST lines with hours and minutes
    DAY = "day"  # LIST lines with a year instead of the time


@dataclass(frozen=True)
class Entry:
    """One line of a folder listing, before the pattern is applied."""

    name: str
    kind: str  # "file", "dir", "link" or "unknown"
    size: int | None
    mtime: dt.datetime | None
    precision: TimePrecision = TimePrecision.EXACT
    # Sized and timed one by one (SIZE, MDTM: they follow a link) where the listing's own facts
    # are the link's (an MLSD line of ProFTPD, whose MLST says the same): checked so again.
    probed: bool = False


def parse_mlsd_facts(name: str, facts: dict[str, str]) -> Entry | None:
    """One MLSD line (name and facts, as ftplib splits it); None for the folder itself, its
    parent, or a name no file in this folder can have (`naming.is_entry_name`)."""
    if not is_entry_name(name):
        return None
    kind = facts.get("type", "file").lower()
    size = facts.get("size") or facts.get("sizd")
    if kind.startswith(("os.unix=symlink", "os.unix=slink")):  # ProFTPD lists a link as itself
        kind = "link"  # (`slink:<target>`: the target's name is no type, "dir" in it or not)
    return Entry(
        name=name,
        kind=kind if kind in ("file", "link") else ("dir" if "dir" in kind else kind),
        size=server_number(size),
        mtime=parse_ftp_time(facts.get("modify", "")),
    )


_TIME_RE = re.compile(r"^(\d{14})(?:\.(\d{1,6}))?$")


def parse_ftp_time(value: str) -> dt.datetime | None:
    """`YYYYMMDDHHMMSS[.fff]` (MLSD `modify`, MDTM), which RFC 3659 defines as UTC."""
    match = _TIME_RE.match(value.strip())
    if not match:
        return None
    try:
        stamp = dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    if match.group(2):
        stamp = stamp.replace(microsecond=int(match.group(2).ljust(6, "0")))
    return stamp


# `ls -l` with its classic time (`Jun 18 17:28`, or `Jun 18  2025` past six months) or an
# ISO one (`--time-style=long-iso`: `2026-06-18 17:28`; `full-iso` adds seconds and a zone).
_UNIX_LINE = re.compile(
    r"^(?P<type>[-dlbcpsD])[-rwxsStTlL+.@]{9,10}\s+\d+\s+(?:\S+\s+){1,2}?(?P<size>\d+)\s+"
    r"(?:(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<when>\d{1,2}:\d{2}|\d{4})"
    r"|(?P<iso>\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?"
    r"(?:\s+(?P<zone>[+-]\d{4}))?)\s(?P<name>.+)$"
)
# IIS: `12-05-26  04:27PM`, or with 24-hour times `12-05-26  16:27`, years of 2 or 4 digits.
_DOS_LINE = re.compile(
    r"^(?P<date>\d{1,2}-\d{1,2}-(?:\d{4}|\d{2}))\s+(?P<time>\d{1,2}:\d{2})\s*(?P<half>[AaPp][Mm])?\s+"
    r"(?P<size><DIR>|\d+)\s+(?P<name>.+)$"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def parse_list_line(line: str, now: dt.datetime | None = None) -> Entry | None:
    """One LIST line in Unix (`ls -l`) or DOS/IIS style; None when it is neither.

    LIST times are rough (minutes, or only the date for files older than six months) and
    in the server's zone, assumed UTC; they are used only when MDTM is unavailable.
    """
    line = line.rstrip("\r\n")
    unix = _UNIX_LINE.match(line)
    if unix:
        kind = {"-": "file", "d": "dir", "D": "dir", "l": "link"}.get(unix["type"], "other")
        name = unix["name"]
        if kind == "link" and " -> " in name:
            name = name.split(" -> ", 1)[0]
        if name in (".", ".."):
            return None
        if unix["iso"]:
            mtime = _iso_list_time(unix)
            precision = TimePrecision.EXACT if unix["second"] else TimePrecision.MINUTE
        else:
            mtime = _unix_list_time(unix, now)
            precision = TimePrecision.MINUTE if ":" in unix["when"] else TimePrecision.DAY
        return Entry(name, kind, server_number(unix["size"]), mtime, precision)
    dos = _DOS_LINE.match(line)
    if dos:
        is_dir = dos["size"] == "<DIR>"
        size = None if is_dir else server_number(dos["size"])
        return Entry(dos["name"], "dir" if is_dir else "file", size, _dos_time(dos), TimePrecision.MINUTE)
    return None


def _dos_time(match: re.Match[str]) -> dt.datetime | None:
    year = "%Y" if len(match["date"].rsplit("-", 1)[1]) == 4 else "%y"
    half = (match["half"] or "").upper()
    try:
        stamp = dt.datetime.strptime(
            f"{match['date']} {match['time']}{half}", f"%m-%d-{year} " + ("%I:%M%p" if half else "%H:%M")
        )
    except ValueError:
        return None
    return stamp.replace(tzinfo=dt.UTC)


def _iso_list_time(match: re.Match[str]) -> dt.datetime | None:
    try:
        stamp = dt.datetime.strptime(" ".join(match["iso"].split()), "%Y-%m-%d %H:%M")
    except ValueError:
        return None
    stamp = stamp.replace(second=int(match["second"] or 0), tzinfo=dt.UTC)
    if match["zone"]:  # `full-iso`: the server's zone is written out, so honour it
        sign = -1 if match["zone"][0] == "-" else 1
        offset = dt.timedelta(hours=int(match["zone"][1:3]), minutes=int(match["zone"][3:5]))
        stamp -= sign * offset
    return stamp


def _unix_list_time(match: re.Match[str], now: dt.datetime | None) -> dt.datetime | None:
    month = _MONTHS.get(match["month"].lower())
    if month is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    when = match["when"]
    try:
        if ":" in when:
            hour, minute = (int(part) for part in when.split(":"))
            stamp = dt.datetime(now.year, month, int(match["day"]), hour, minute, tzinfo=dt.UTC)
            # `ls` shows the time instead of the year for the last six months: a date ahead
            # of now (beyond clock skew) belongs to last year.
            if stamp - now > dt.timedelta(days=1):
                stamp = stamp.replace(year=now.year - 1)
            return stamp
        return dt.datetime(int(when), month, int(match["day"]), tzinfo=dt.UTC)
    except ValueError:
        return None
