"""An installation upgraded from the release before the key index and the mail outbox
(migrations 022 and 023) keeps everything it had, and the new behaviour holds on its old data.

The "old" database is built without the old code: files are loaded as today, then the tables
those two migrations created are dropped and their rows in `schema_migrations` deleted, which
is how a database of that release looks (its rows in the table and in Parquet parts, with no
key index). The next `Services` opens it as an upgraded installation's first start does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from helpers import call_csv, fresh_date
from smtp_server import running_smtp

from connectbatch import schemas
from connectbatch.models import ActionStatus, MailState, Redelivery, RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store import data as data_store
from connectbatch.store import outbox as outbox_store
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
        con.execute("ALTER TABLE connections DROP COLUMN mail_tag")  # 024, later still
        con.execute("ALTER TABLE runs DROP COLUMN actions_changed")  # 025, later still
        con.execute("ALTER TABLE rejects DROP COLUMN row_key")  # 026, later still
        con.execute("ALTER TABLE action_audit DROP COLUMN effective_at")  # 027, later still
        con.execute("DROP TABLE mail_taken")  # 028, later still
        con.execute("ALTER TABLE runs DROP COLUMN host")  # 029, later still
        con.execute("ALTER TABLE runs DROP COLUMN pid_start")
        con.execute("DROP TABLE run_beats")
        con.execute("ALTER TABLE rejects DROP COLUMN row_qualifier")  # 030, later still
        con.execute("ALTER TABLE actions DROP COLUMN currency")  # 032, later still
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


def test_the_upgrade_indexes_every_stored_row_and_keeps_every_count(
    before: Before, settings: Settings
) -> None:
    services = _upgraded(settings)

    assert {r.id: r.status for r in services.runs()} == before.runs
    assert services.count_actions() == before.actions
    assert _stored_rows(services) == before.rows
    with services.db.connect() as con:
        versions = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
        indexed = dict(con.execute("SELECT data_type, count(*) FROM data_keys GROUP BY 1").fetchall())
        filled = {k for (k,) in con.execute("SELECT data_type FROM data_keys_filled").fetchall()}
    assert {22, 23} <= versions
    assert indexed == {key: n for key, n in before.rows.items() if n}  # the Parquet part's rows too
    assert filled == set(schemas.REGISTRY)


@pytest.mark.parametrize("prefix", ["small", "big"])  # rows in the table, rows in a Parquet part
def test_records_loaded_before_the_upgrade_are_still_refused_as_already_loaded(
    before: Before, settings: Settings, prefix: str
) -> None:
    services = _upgraded(settings)

    run = services.ingest_bytes("Calls", f"again-{prefix}.csv", call_csv(3, prefix=prefix, event_date=EVENT))

    assert run.status is RunStatus.NEEDS_REVIEW and run.review == "quarantined"
    assert "already loaded" in (run.reason or "")
    assert services.count_actions() == before.actions  # nothing doubled


def test_a_supersede_connection_corrects_a_record_stored_before_the_upgrade(
    before: Before, settings: Settings
) -> None:
    services = _upgraded(settings)

    run = services.ingest_bytes(
        "Fixes",
        "corrected.csv",
        call_csv(1, prefix="fix", event_date=EVENT, overrides={0: {"SaleAmount": "99.00"}}),
    )

    assert run.status is RunStatus.COMPLETED, run.reason
    assert (run.rows_replaced, run.rows_accepted) == (1, 1)
    assert services.count_actions() == before.actions
    fixed = [a for a in services.actions("Fixes") if a.source_key == "fix-0000"]
    assert [(a.status, str(a.amount)) for a in fixed] == [(ActionStatus.PENDING, "99.00")]


def test_a_batch_held_before_the_upgrade_is_released_without_doubling(
    before: Before, settings: Settings
) -> None:
    services = _upgraded(settings)

    run = services.release(before.held_run, "checked")

    assert run.status is RunStatus.COMPLETED, run.reason
    assert services.count_actions() == before.actions + 1  # new-1 only; the two repeats stay single
    again = services.ingest_bytes("Calls", "new-again.csv", call_csv(1, prefix="new", event_date=EVENT))
    assert again.status is RunStatus.COMPLETED  # "new-0000" is another key than "new-1"
    repeat = services.ingest_bytes(
        "Calls",
        "new-1.csv",
        call_csv(1, prefix="x", event_date=EVENT, overrides={0: {"CallSessionId": "new-1"}}),
    )
    assert repeat.status is RunStatus.NEEDS_REVIEW and "already loaded" in (repeat.reason or "")


def test_results_mail_after_the_upgrade_goes_through_the_outbox(before: Before, settings: Settings) -> None:
    with running_smtp() as (inbox, smtp):
        services = Services(replace(settings, smtp=smtp))

        run = services.ingest_bytes("Calls", "after.csv", call_csv(2, prefix="after", event_date=EVENT))
        services.outbox.send_due()

        assert run.status is RunStatus.COMPLETED, run.reason
        with services.db.connect() as con:
            [queued] = outbox_store.of_run(con, run.id)
        assert queued.state is MailState.SENT and queued.recipient == RETURN
        assert [m["To"] for m in inbox.messages] == [RETURN]


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


def test_an_upgrade_stopped_while_filling_the_index_is_finished_at_the_next_open(
    before: Before, settings: Settings
) -> None:
    """Killed during the first open, after the migrations and before a data type's fill
    committed (each fill is one transaction): that type has neither entries nor its mark."""
    services = _upgraded(settings)
    with services.db.transaction() as con:
        con.execute("DELETE FROM data_keys WHERE data_type = 'call_conversions'")
        con.execute("DELETE FROM data_keys_filled WHERE data_type = 'call_conversions'")
    services.db.release()

    reopened = _upgraded(settings)
    run = reopened.ingest_bytes("Calls", "again.csv", call_csv(2, prefix="big", event_date=EVENT))

    assert run.status is RunStatus.NEEDS_REVIEW and "already loaded" in (run.reason or "")
    with reopened.db.connect() as con:
        indexed = con.execute(
            "SELECT count(*) FROM data_keys WHERE data_type = 'call_conversions'"
        ).fetchall()
    assert indexed[0][0] == before.rows["call_conversions"]
