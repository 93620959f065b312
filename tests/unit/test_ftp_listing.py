"""LIST lines of FTP servers without MLSD, as partners' servers write them
(`transfer.pull.ftp.listing`); the older styles are in `test_ftp_pull.test_parse_list_line`."""

from __future__ import annotations

import datetime as dt

import pytest

from connectbatch.transfer.base import server_number
from connectbatch.transfer.pull.ftp.listing import (
    TimePrecision,
    parse_list_line,
    parse_mlsd_facts,
)

NOW = dt.datetime(2026, 12, 5, 18, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # IIS with 24-hour times, two- and four-digit years
        (
            "12-05-26  16:27                  228 calls one.csv",
            ("calls one.csv", "file", 228, (2026, 12, 5, 16, 27)),
        ),
        ("12-05-2026  00:05       228 calls [2].csv", ("calls [2].csv", "file", 228, (2026, 12, 5, 0, 5))),
        ("01-02-2026  23:59       <DIR>          done", ("done", "dir", None, (2026, 1, 2, 23, 59))),
        # IIS with AM/PM, still read
        ("12-05-26  04:27PM                  228 pm.csv", ("pm.csv", "file", 228, (2026, 12, 5, 16, 27))),
        ("12-05-26  12:10AM                  228 am.csv", ("am.csv", "file", 228, (2026, 12, 5, 0, 10))),
        # `ls -l --time-style=long-iso` and `full-iso`
        ("-rw-r--r-- 1 u g 228 2026-12-05 16:27 iso.csv", ("iso.csv", "file", 228, (2026, 12, 5, 16, 27))),
        (
            "-rw-r--r-- 1 1001 1001 228 2026-12-05 16:27 two  spaces.csv",
            ("two  spaces.csv", "file", 228, (2026, 12, 5, 16, 27)),
        ),
        ("drwxr-xr-x 2 u g 4096 2025-01-31 09:00 archive", ("archive", "dir", 4096, (2025, 1, 31, 9, 0))),
        (
            "-rw-r--r-- 1 u g 228 2026-12-05 16:27:09.123456789 +0100 full.csv",
            ("full.csv", "file", 228, (2026, 12, 5, 15, 27, 9)),
        ),
    ],
)
def test_list_lines_of_iis_24_hour_and_iso_dated_servers_are_read(
    line: str, expected: tuple[str, str, int | None, tuple[int, ...]]
) -> None:
    entry = parse_list_line(line, NOW)

    assert entry is not None
    name, kind, size, when = expected
    assert (entry.name, entry.kind, entry.size, entry.mtime) == (
        name,
        kind,
        size,
        dt.datetime(*when, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize("line", ["13-45-26  16:27  228 bad-date.csv", "12-05-26  25:61  228 bad-time.csv"])
def test_a_dos_line_with_an_impossible_date_keeps_its_name_without_a_time(line: str) -> None:
    entry = parse_list_line(line, NOW)

    assert entry is not None and entry.mtime is None and entry.size == 228


@pytest.mark.parametrize(
    ("line", "precision"),
    [
        ("-rw-r--r-- 1 u g 228 Jun 18 17:28 recent.csv", TimePrecision.MINUTE),
        ("-rw-r--r-- 1 u g 228 Jun 18  2026 old.csv", TimePrecision.DAY),
        ("-rw-r--r-- 1 u g 228 2026-06-18 17:28 iso.csv", TimePrecision.MINUTE),
        ("-rw-r--r-- 1 u g 228 2026-06-18 17:28:09.5 +0000 full.csv", TimePrecision.EXACT),
        ("06-18-26  17:28       228 dos.csv", TimePrecision.MINUTE),
    ],
)
def test_a_list_time_says_how_precise_it_is(line: str, precision: TimePrecision) -> None:
    """`ls` drops the hours of files older than six months: such a time is matched by date."""
    entry = parse_list_line(line, NOW)

    assert entry is not None and entry.precision is precision


@pytest.mark.parametrize("size", ["9" * 5000, "²", "١٢٣", "-5", "1e9"])
def test_a_size_that_is_no_plain_number_is_unknown_not_an_error(size: str) -> None:
    """A pull audit: a hostile server's `size=` of 5,000 digits (past Python's limit for
    int()) or `size=²` (a digit to str.isdigit) raised ValueError out of the pull: a scheduled
    run recorded nothing, a manual one failed with an internal error, every time."""
    entry = parse_mlsd_facts("calls.csv", {"type": "file", "size": size})
    assert entry is not None and entry.size is None
    line = f"-rw-r--r--   1 ftp ftp {size} Mar 01 10:00 calls.csv"
    listed = parse_list_line(line, NOW)
    assert listed is None or (listed.name == "calls.csv" and listed.size is None)
    assert server_number("123") == 123
