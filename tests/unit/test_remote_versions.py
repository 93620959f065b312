"""A listed remote file's age and version, at the precision its listing gave (`transfer.base`):
an FTP LIST line gives minutes (or only the day), MLSD/MDTM and SFTP the second."""

from __future__ import annotations

import datetime as dt

from connectbatch.transfer.base import RemoteFile, changed_since, old_enough

T = dt.datetime(2026, 12, 6, 14, 0, tzinfo=dt.UTC)


def listed(precision: str = "exact", size: int | None = 10) -> RemoteFile:
    return RemoteFile("a.csv", "/in/a.csv", size, T, extra={"mtime_precision": precision})


def test_a_time_known_to_the_minute_is_judged_by_the_end_of_that_minute() -> None:
    """ "14:00" in a LIST line may be 14:00:52: a file 10 s old passed a minimum age of 60 s."""
    now = T + dt.timedelta(seconds=62)
    assert not old_enough(listed("minute"), 60, now)
    assert old_enough(listed("minute"), 60, T + dt.timedelta(seconds=120))
    assert old_enough(listed("exact"), 60, now)
    assert not old_enough(listed("day"), 60, T + dt.timedelta(hours=23))


def test_changed_since_compares_size_and_time_at_the_listings_precision() -> None:
    assert changed_since(listed(), 10, T) is None
    assert changed_since(listed(), 10, T + dt.timedelta(microseconds=300)) is None
    assert "now 11" in (changed_since(listed(), 11, T) or "")
    assert changed_since(listed(), 10, T + dt.timedelta(seconds=5)) is not None
    assert changed_since(listed("minute"), 10, T + dt.timedelta(seconds=59)) is None
    assert changed_since(listed("minute"), 10, T + dt.timedelta(minutes=1)) is not None
    assert changed_since(listed(size=None), None, None) is None  # the server does not say
