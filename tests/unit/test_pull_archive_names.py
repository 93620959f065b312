"""The one archive-naming rule (`transfer.naming.archived_name`) as the SFTP and FTP pulls use
it, and a guard that no transfer module grows its own copy of it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import connectbatch.transfer
from connectbatch.transfer.naming import archived_name

NOW = dt.datetime(2026, 11, 23, 13, 1, 2, tzinfo=dt.UTC)
TRANSFER = Path(connectbatch.transfer.__file__).parent


def test_a_free_name_is_kept() -> None:
    assert archived_name("a.csv", set(), NOW) == "a.csv"


def test_a_clash_gets_the_utc_stamp_before_the_extension() -> None:
    assert archived_name("a.csv", {"a.csv"}, NOW) == "a_20261123T130102Z.csv"
    assert archived_name("a.csv.gz", {"a.csv.gz"}, NOW) == "a_20261123T130102Z.csv.gz"


def test_a_second_clash_in_the_same_second_gets_a_counter() -> None:
    taken = {"README", "README_20261123T130102Z"}
    assert archived_name("README", taken, NOW) == "README_20261123T130102Z-2"


def test_a_local_time_is_stamped_in_utc() -> None:
    local = NOW.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert archived_name("a.csv", {"a.csv"}, local) == "a_20261123T130102Z.csv"


def test_asking_the_server_gives_the_same_names_as_a_listing() -> None:
    """SFTP asks the server name by name; FTP passes the folder's listing: same rule."""
    taken = {"a.csv", "a_20261123T130102Z.csv"}
    asked: list[str] = []

    def exists(name: str) -> bool:
        asked.append(name)
        return name in taken

    assert archived_name("a.csv", exists, NOW) == archived_name("a.csv", taken, NOW)
    assert asked == ["a.csv", "a_20261123T130102Z.csv", "a_20261123T130102Z-2.csv"]


def test_no_transfer_module_has_its_own_archive_naming() -> None:
    """The stamp format, and functions that make archive names, live in naming.py only."""
    stamp = re.compile(r"%Y%m%dT%H%M%S")
    own_rule = re.compile(r"def \w*(archived?|stamped)_name\b")
    offenders = [
        str(path.relative_to(TRANSFER))
        for path in sorted(TRANSFER.rglob("*.py"))
        if path.name != "naming.py"
        and (stamp.search(text := path.read_text(encoding="utf-8")) or own_rule.search(text))
    ]
    assert offenders == []


def test_the_pulls_that_archive_use_the_shared_rule() -> None:
    for transport in ("pull/sftp/transport.py", "pull/ftp/transport.py"):
        source = (TRANSFER / transport).read_text(encoding="utf-8")
        assert "from connectbatch.transfer.naming import archived_name" in source, transport
