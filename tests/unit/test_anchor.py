"""The database anchor's waiting markers (store/anchor.py): a live process that waits for the
file makes the holder close it; a marker left by a dead process or by this one does not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from connectbatch.store.anchor import FOREIGN_FRESH_S, LOOK_EVERY_S, Anchor, marked_waiting, node_tag, waiting


def test_a_live_waiter_is_seen(tmp_path: Path) -> None:
    database = tmp_path / "x.duckdb"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / f"x.duckdb.waiting-{sleeper.pid}").touch()
        assert waiting(database)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not waiting(database)  # the same marker, its process gone: and removed
    assert not (tmp_path / f"x.duckdb.waiting-{sleeper.pid}").exists()


def test_this_process_does_not_wait_for_itself(tmp_path: Path) -> None:
    database = tmp_path / "x.duckdb"
    with marked_waiting(database):
        assert (tmp_path / f"x.duckdb.waiting-{os.getpid()}-{node_tag()}").exists()
        assert not waiting(database)
    assert list(tmp_path.iterdir()) == []


def test_a_waiter_of_another_host_counts_while_its_marker_is_fresh(tmp_path: Path) -> None:
    """Its pid means nothing here (another host or pid namespace): its age tells, which its
    waiter refreshes at every try; a stale one goes."""
    database = tmp_path / "x.duckdb"
    marker = tmp_path / "x.duckdb.waiting-4000001-0123456789ab"  # no process of ours
    marker.touch()
    assert waiting(database)
    old = time.time() - FOREIGN_FRESH_S - 1
    os.utime(marker, (old, old))
    assert not waiting(database)
    assert not marker.exists()


def test_other_files_and_other_databases_are_not_waiters(tmp_path: Path) -> None:
    (tmp_path / "y.duckdb.waiting-1").touch()  # another database's (pid 1 lives)
    (tmp_path / "x.duckdb.waiting-abc").touch()
    (tmp_path / "x.duckdb.wal").touch()
    assert not waiting(tmp_path / "x.duckdb")
    assert not waiting(tmp_path / "missing" / "x.duckdb")


def test_a_holder_between_operations_closes_for_a_waiter_soon(tmp_path: Path) -> None:
    """Give-backs look for waiters at most every LOOK_EVERY_S (listing the folder every time
    cost ~1 ms a small file): a waiter that comes during a held stretch still makes the next
    give-back after that close the file."""
    database = tmp_path / "x.duckdb"
    anchor = Anchor(database, lambda: duckdb.connect(str(database)), linger=30)
    with anchor.held():
        anchor.give_back(anchor.cursor())
        assert anchor._con is not None  # nobody waits: kept open
        (tmp_path / f"x.duckdb.waiting-{os.getppid()}").touch()  # a live process (our parent)
        time.sleep(LOOK_EVERY_S)
        anchor.give_back(anchor.cursor())
        assert anchor._con is None
    anchor.close()
