"""A distributed pull worker knows a listed file an earlier run settled as the embedded pull
does (`store.runs.taken_before`): by path, size and time, a listing without a size by path and
time, a time known to the day only by its date."""

from __future__ import annotations

import datetime as dt

from connectbatch.distributed.tasks import remote_key, settled_state
from connectbatch.transfer.base import DAY_PRECISION, RemoteFile

LOADED_AT = dt.datetime(2026, 6, 18, 17, 28, tzinfo=dt.UTC)
SETTLED = {remote_key("/in/calls.csv", 228, LOADED_AT): "loaded"}


def listed(size: int | None, mtime: dt.datetime | None, *, by_day: bool = False) -> RemoteFile:
    extra = {"mtime_precision": DAY_PRECISION} if by_day else {}
    return RemoteFile("calls.csv", "/in/calls.csv", size, mtime, extra=extra)


def test_the_same_version_is_settled_and_a_new_one_is_not() -> None:
    assert settled_state(SETTLED, listed(228, LOADED_AT)) == "loaded"
    assert settled_state(SETTLED, listed(229, LOADED_AT)) is None
    assert settled_state(SETTLED, listed(228, LOADED_AT + dt.timedelta(minutes=1))) is None


def test_six_months_later_ls_shows_the_year_and_the_file_is_still_the_one_loaded() -> None:
    midnight = dt.datetime(2026, 6, 18, tzinfo=dt.UTC)
    assert settled_state(SETTLED, listed(228, midnight, by_day=True)) == "loaded"
    assert settled_state(SETTLED, listed(228, midnight)) is None  # an exact time: another version
    assert settled_state(SETTLED, listed(228, midnight + dt.timedelta(days=1), by_day=True)) is None


def test_a_listing_without_a_size_matches_by_path_and_time() -> None:
    assert settled_state(SETTLED, listed(None, LOADED_AT)) == "loaded"
    assert settled_state(SETTLED, listed(None, None)) is None


def test_a_listed_file_compares_only_the_versions_of_its_own_path() -> None:
    """The worker compared every settled file with every listed one whose time is known by
    the day (an FTP LIST of old files): quadratic, hours for 200,000 files. Now by path."""
    from connectbatch.distributed.tasks import Settled

    many = {remote_key(f"/in/old_{i}.csv", 228, LOADED_AT): "loaded" for i in range(1000)}
    index = Settled({**many, **SETTLED})
    assert len(index.index._by_path) == 1001
    [line] = index.index._by_path["/in/calls.csv"]
    assert (line.size, line.mtime, line.state) == (228, LOADED_AT, "loaded")
    midnight = LOADED_AT.replace(hour=0, minute=0)
    assert index.state(listed(228, midnight, by_day=True)) == "loaded"
    assert index.state(listed(228, midnight + dt.timedelta(days=1), by_day=True)) is None
