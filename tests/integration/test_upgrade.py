"""An installation upgraded from the release before the key index and the mail outbox
(migrations 022 and 023) keeps everything it had, and the new behaviour holds on its old data.

The "old" database is built without the old code: files are loaded as today, then the tables
those two migrations created are dropped and their rows in `schema_migrations` deleted, which
is how a database of that release looks (its rows in the table and in Parquet parts, with no
key index). The next `Services` opens it as an upgraded installation's first start does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from helpers import call_csv, fresh_date

from connectbatch import schemas
from connectbatch.models import Redelivery, RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store import data as data_store
from connectbatch.store.db import all_rows

EVENT = fresh_date(2)
RETURN = "ops@acme.example"
PART_ROWS = 40  # files of this many rows or more are stored as Parquet parts here


@dataclass(frozen=True)
class Before:
    """What the old installation reported before the upgrade."""

    runs: dict[int, RunStatus]
    actions: int
    rows: dict[str, int]
    held_run: int


def _as_before_the_key_index(services: Services) -> None:
    """Turn the database into one of the release before migrations 022 and 023."""
    with services.db.transaction() as con:
        con.execute("DROP TABLE data_keys")
        con.execute("DROP TABLE data_keys_filled")
        con.execute("DROP TABLE mail_outbox")
        con.execute("DROP SEQUENCE seq_mail_outbox")
        con.execute("DELETE FROM schema_migrations WHERE version >= 22")
    services.db.release()


def _stored_rows(services: Services) -> dict[str, int]:
    with services.db.connect() as con:
        return {
            key: int(con.execute(f"SELECT count(*) FROM {all_rows(key)}").fetchall()[0][0])
            for key in schemas.REGISTRY
        }


@pytest.fixture
def before(services: Services, make_connection, monkeypatch: pytest.MonkeyPatch) -> Iterator[Before]:
    """An old installation: call conversions in the table and in a Parquet part, a batch held
    for review, a supersede connection, a catalog; its database as the old release left it."""
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", PART_ROWS)
    make_connection("Calls", lock_days=30, return_email=RETURN)
    make_connection("Fixes", lock_days=30, redelivery=Redelivery.SUPERSEDE)
    make_connection("Shop", data_type="product_catalogs")
    loads = [
        services.ingest_bytes("Calls", "small.csv", call_csv(5, prefix="small", event_date=EVENT)),
        services.ingest_bytes("Calls", "big.csv", call_csv(PART_ROWS, prefix="big", event_date=EVENT)),
        services.ingest_bytes("Fixes", "fixes.csv", call_csv(3, prefix="fix", event_date=EVENT)),
        services.ingest_bytes(
            "Shop",
            "catalog.csv",
            b"CatalogItemId,Name,Url,CurrentPrice\r\nSKU-1,Widget,https://example.com/1,9.99\r\n",
        ),
    ]
    assert [r.status for r in loads] == [RunStatus.COMPLETED] * 4, [r.reason for r in loads]
    with services.db.connect() as con:
        parts = con.execute("SELECT count(*) FROM data_parts").fetchall()[0][0]
    assert parts == 1  # big.csv
    held = services.ingest_bytes(  # two records sent again and one new: held for review
        "Calls",
        "held.csv",
        call_csv(3, prefix="small", event_date=EVENT, overrides={2: {"CallSessionId": "new-1"}}),
    )
    assert held.status is RunStatus.NEEDS_REVIEW
    state = Before(
        runs={r.id: r.status for r in services.runs()},
        actions=services.count_actions(),
        rows=_stored_rows(services),
        held_run=held.id,
    )
    _as_before_the_key_index(services)
    yield state


def _upgraded(settings: Settings) -> Services:
    """The first start of the new release on the old data folder."""
    return Services(settings)


def test_rows_an_older_release_loaded_after_the_upgrade_are_indexed_at_the_next_open(
    before: Before, settings: Settings
) -> None:
    """A downgrade and back (or an older process still running beside the upgraded one)
    loads rows without their key-index entries, into an index already marked filled: the
    next open must index them, or their records would be loaded a second time."""
    services = _upgraded(settings)
    loaded = services.ingest_bytes("Calls", "older.csv", call_csv(3, prefix="older", event_date=EVENT))
    assert loaded.status is RunStatus.COMPLETED, loaded.reason
    [f] = services.run_files(loaded.id)
    with services.db.transaction() as con:  # as the old release stores a file: rows, no entries
        con.execute("DELETE FROM data_keys WHERE file_id = ?", [f.id])
    services.db.release()
    actions = services.count_actions()

    reopened = _upgraded(settings)
    again = call_csv(3, prefix="older", event_date=EVENT, newline="\n")  # new bytes, same records
    run = reopened.ingest_bytes("Calls", "older-again.csv", again)

    assert run.status is RunStatus.NEEDS_REVIEW and "already loaded" in (run.reason or "")
    assert reopened.count_actions() == actions
