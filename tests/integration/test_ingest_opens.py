"""How many times one file's ingest opens the database (issue 13: opening a DuckDB file costs
~15-35 ms, and closing it a checkpoint; the goal is one open per file's ingest).

Operations take cursors on one anchor connection that stays open `linger` seconds after the
last operation (store/db.py): a cold ingest opens the file once, a stream of files opens it
once in all, and the file is free for other processes soon after the stream ends.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

from helpers import call_csv

from connectbatch.services import Services
from connectbatch.settings import Settings

TRY_OPEN = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"


def _opens(services: Services, name: str, data: bytes) -> int:
    before = services.db.opens
    run = services.ingest_bytes("Acme", name, data)
    assert run.files_loaded == 1, run.reason
    return services.db.opens - before


def test_a_cold_ingest_opens_the_database_once(services: Services, make_connection) -> None:
    make_connection("Acme")
    services.ingest_bytes("Acme", "first.csv", call_csv(5))  # migrations and first use
    services.db.release()
    assert _opens(services, "second.csv", call_csv(5, prefix="b")) == 1


def test_files_one_after_another_share_one_open(services: Services, make_connection) -> None:
    make_connection("Acme")
    services.ingest_bytes("Acme", "first.csv", call_csv(5))
    opens = sum(_opens(services, f"f{i}.csv", call_csv(5, prefix=f"p{i}")) for i in range(5))
    assert opens == 0  # within the linger of the previous one (0.5 s)


def test_the_file_is_free_for_another_process_soon_after_the_last_operation(
    settings: Settings, make_connection
) -> None:
    services = Services(replace(settings, db_linger=0.3))
    make_connection("Acme")
    services.ingest_bytes("Acme", "first.csv", call_csv(5))
    time.sleep(1.0)  # the linger (0.3 s) has passed: the anchor is closed, no retry needed
    subprocess.run([sys.executable, "-c", TRY_OPEN, str(settings.database)], check=True, timeout=60)


def test_without_linger_every_operation_closes_the_file(settings: Settings, make_connection) -> None:
    services = Services(replace(settings, db_linger=0.0))
    make_connection("Acme")  # through the fixture's own services (default linger)
    time.sleep(1.0)
    services.connections()
    # at once, no retry: nothing is left open
    subprocess.run([sys.executable, "-c", TRY_OPEN, str(settings.database)], check=True, timeout=60)
    assert _opens(services, "first.csv", call_csv(5)) > 1


WAIT_AND_OPEN = """
import sys, time
from connectbatch.store import Database
started = time.monotonic()
with Database(sys.argv[1], lock_timeout=20).connect() as con:
    con.execute("SELECT 1")
print(round(time.monotonic() - started, 2))
"""


def test_a_held_file_is_closed_for_a_process_that_waits(settings: Settings, make_connection) -> None:
    """A long hold (a big file's parse) does not keep another process out: it marks itself
    waiting and the holder closes the file within a linger period."""
    services = Services(replace(settings, db_linger=0.3))
    make_connection("Acme")
    services.connections()
    with services.db.held():
        services.connections()
        waiter = subprocess.run(
            [sys.executable, "-c", WAIT_AND_OPEN, str(settings.database)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        services.connections()  # and the holder opens it again afterwards
    assert float(waiter.stdout.strip()) < 5.0, waiter.stdout
    assert list(settings.database.parent.glob("*.waiting-*")) == []
