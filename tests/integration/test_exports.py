"""Outbound exports: what a "Pull from us" partner finds in its folder."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import call_csv

from connectbatch.models import Connection, ConnectionStatus, Direction, Method, Methodology
from connectbatch.services import InvalidInputError, Services


def test_export_writes_the_window_with_action_status(services: Services) -> None:
    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    services.ingest_bytes("Acme", "calls.csv", call_csv(4, prefix="exp"))
    first = services.actions("Acme")[0]
    services.reverse_action(first.id, "returned", actor="alice")
    outbound, login = services.create_connection(
        Connection("Pickup", "call_conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US)
    )
    assert login is not None  # the partner collects with a login we provision

    now = dt.datetime.now(dt.UTC)
    path = services.export("Pickup", now - dt.timedelta(days=7), now)

    assert path.parent == services.settings.outbound / str(outbound.id)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == 4
    by_action = {r["ActionId"]: r for r in rows}
    assert by_action[first.label]["ActionStatus"] == "REVERSED"
    assert by_action[first.label]["ActionAmount"] == "0.00"
    assert {r["CallSessionId"] for r in rows} == {f"exp-{i:04d}" for i in range(4)} or len(rows) == 4

    # The spec's dates are ISO 8601; DuckDB's own text was "2026-12-05 14:05:09+00"
    iso = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
    assert all(re.match(iso, r["EventDate"]) and re.match(iso, r["LockDate"]) for r in rows), rows[0]
    loaded = {a.label: a for a in services.actions("Acme")}
    for row in rows:
        stamp = dt.datetime.fromisoformat(row["LockDate"])
        assert stamp == loaded[row["ActionId"]].lock_at

    empty = services.export("Pickup", now - dt.timedelta(days=30), now - dt.timedelta(days=20))
    assert list(csv.DictReader(io.StringIO(empty.read_text()))) == []


def test_exports_belong_to_outbound_connections(services: Services) -> None:
    services.create_connection(
        Connection("Inbound", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(InvalidInputError, match="inbound"):
        services.export("Inbound", now - dt.timedelta(days=1), now)


# ------------------------------------------------------------------ issue 11: scoped exports


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def exported(services: Services, name: str) -> list[dict[str, str]]:
    """Export now; the rows of the file it wrote ([] when there was nothing new)."""
    done = services.export_now(name)
    if done is None:
        return []
    assert done.file_name is not None
    return rows_of(services.settings.outbound / str(services.connection(name).id) / done.file_name)


@pytest.fixture
def two_partners(services: Services) -> Services:
    """Acme (brand) with an inbound connection and an outbound pickup; Rival (publisher)
    with an inbound connection of the same data type."""
    services.add_partner("Acme", "brand")
    services.add_partner("Rival", "publisher")
    for name, partner, direction, methodology in (
        ("Acme calls", "Acme", Direction.INBOUND, Methodology.PUSH),
        ("Rival calls", "Rival", Direction.INBOUND, Methodology.PUSH),
        ("Acme pickup", "Acme", Direction.OUTBOUND, Methodology.PULL_FROM_US),
    ):
        services.create_connection(
            Connection(name, "call_conversions", direction, Method.SFTP, methodology), partner=partner
        )
    services.ingest_bytes("Acme calls", "acme.csv", call_csv(3, prefix="acme"))
    services.ingest_bytes("Rival calls", "rival.csv", call_csv(2, prefix="rival"))
    return services


def test_an_export_carries_only_its_own_partners_rows(two_partners: Services) -> None:
    services = two_partners
    now = dt.datetime.now(dt.UTC)

    sessions = {r["CallSessionId"] for r in exported(services, "Acme pickup")}
    window = rows_of(services.export("Acme pickup", now - dt.timedelta(days=7), now + dt.timedelta(days=1)))

    assert sessions == {f"acme-{i:04d}" for i in range(3)}
    assert {r["CallSessionId"] for r in window} == sessions
    # Naming another partner's connection as a source is refused.
    with pytest.raises(InvalidInputError, match="export_sources: 'Rival calls' belongs to another partner"):
        services.update_connection("Acme pickup", export_sources=[services.connection("Rival calls").id])


def test_an_export_of_named_sources_carries_only_those(two_partners: Services) -> None:
    services = two_partners
    services.create_connection(
        Connection("Acme calls 2", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH),
        partner="Acme",
    )
    services.ingest_bytes("Acme calls 2", "more.csv", call_csv(2, prefix="more"))
    services.update_connection("Acme pickup", export_sources=[services.connection("Acme calls 2").id])

    assert {r["CallSessionId"] for r in exported(services, "Acme pickup")} == {"more-0000", "more-0001"}


def test_a_late_row_is_exported_when_it_is_loaded(two_partners: Services) -> None:
    """Defect 4: the window follows load time, not EventDate."""
    services = two_partners
    assert len(exported(services, "Acme pickup")) == 3
    three_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)

    services.ingest_bytes("Acme calls", "late.csv", call_csv(1, prefix="late", event_date=three_days_ago))

    assert [r["CallSessionId"] for r in exported(services, "Acme pickup")] == ["late-0000"]
    assert exported(services, "Acme pickup") == []  # exactly once


def fresh_export(services: Services) -> Callable[[Connection], object]:
    return lambda c: services.export_now(c.id, "schedule")


def test_the_watermark_survives_a_new_services_and_engine(two_partners: Services) -> None:
    """Defect 4: a restart forgets nothing and repeats nothing; the engine's scheduled export
    uses the same stored watermark."""
    from connectbatch.engine.scheduler import Scheduler

    assert len(exported(two_partners, "Acme pickup")) == 3
    restarted = Services(two_partners.settings)
    assert restarted.export_now("Acme pickup") is None
    restarted.ingest_bytes("Acme calls", "next.csv", call_csv(2, prefix="next"))

    pickup = restarted.connection("Acme pickup")
    for _ in range(2):  # two engine lives: the second finds nothing new
        fresh = Services(two_partners.settings)
        scheduler = Scheduler(fresh.connections, fresh.pull, fresh.lock_actions, export=fresh_export(fresh))
        scheduler._scheduled_export(pickup.id)

    ledger = restarted.exports("Acme pickup")
    assert [(e.trigger, e.rows, e.new_rows) for e in ledger] == [("schedule", 2, 2), ("manual", 3, 3)]
    assert len({e.file_name for e in ledger}) == 2
    for e in ledger:
        assert (restarted.settings.outbound / str(pickup.id) / str(e.file_name)).is_file()


def test_each_status_change_is_exported_once(two_partners: Services) -> None:
    services = two_partners
    exported(services, "Acme pickup")
    first, second = services.actions("Acme calls")[:2]
    rival = services.actions("Rival calls")[0]

    services.reverse_action(first.id, "returned", actor="alice")
    services.modify_action(second.id, "3.00", "partial", actor="alice")
    services.reverse_action(rival.id, "returned", actor="alice")  # another partner's change

    changed = {r["ActionId"]: r for r in exported(services, "Acme pickup")}
    assert set(changed) == {first.label, second.label}
    statuses = (changed[first.label]["ActionStatus"], changed[second.label]["ActionStatus"])
    assert statuses == ("REVERSED", "MODIFIED")
    assert exported(services, "Acme pickup") == []

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    assert services.lock_actions(later, early=True) > 0
    locked = {r["ActionId"]: r["ActionStatus"] for r in exported(services, "Acme pickup")}
    assert len(locked) == 3 and set(locked.values()) == {"LOCKED", "REVERSED"}
    # a reversal stays REVERSED once locked (it read LOCKED, which a partner takes as approved)
    assert locked[first.label] == "REVERSED" and locked[second.label] == "LOCKED"
    assert exported(services, "Acme pickup") == []
    assert services.exports("Acme pickup")[0].changes == 3


def test_an_export_that_fails_after_writing_its_file_leaves_nothing_to_collect(
    two_partners: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is written before the ledger row and the watermark: a failure after the copy
    (in the export, or at its commit) must leave no file the partner would collect, or the
    rows it holds reach them twice (again in the next export)."""
    from connectbatch.store import exports as export_store

    services = two_partners
    folder = services.settings.outbound / str(services.connection("Acme pickup").id)

    def disk_full(*_args: object) -> None:
        raise OSError("disk full (simulated after the copy)")

    monkeypatch.setattr(export_store, "get", disk_full)  # the export's last step, after its INSERTs
    with pytest.raises(OSError, match="disk full"):
        services.export_now("Acme pickup")
    monkeypatch.undo()
    real = services.db.transaction

    @contextlib.contextmanager
    def failing_commit() -> Iterator[object]:
        with real() as con:
            yield con
            raise OSError("lost the database (simulated at the commit)")

    monkeypatch.setattr(services.db, "transaction", failing_commit)
    with pytest.raises(OSError, match="lost the database"):
        services.export_now("Acme pickup")
    monkeypatch.undo()

    assert sorted(p.name for p in folder.iterdir()) == []  # not even an in-flight leftover
    assert services.exports("Acme pickup") == []
    assert len(exported(services, "Acme pickup")) == 3  # every row once, in the first export made
    assert exported(services, "Acme pickup") == []


def test_an_export_recorded_but_not_yet_renamed_is_published_by_the_next(
    two_partners: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped between its commit and the rename: the file is still in flight, hidden from
    the partner, but its rows are recorded as exported; the next export publishes it."""
    from connectbatch.store import exports as export_store

    services = two_partners
    folder = services.settings.outbound / str(services.connection("Acme pickup").id)

    def stopped(_target: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(export_store, "publish", stopped)
    with pytest.raises(KeyboardInterrupt):
        services.export_now("Acme pickup")
    monkeypatch.undo()
    [ledger] = services.exports("Acme pickup")
    assert [p.name for p in folder.iterdir()] == [f".{ledger.file_name}.tmp"]

    assert services.export_now("Acme pickup") is None  # nothing new: its rows went out once
    assert [p.name for p in folder.iterdir()] == [ledger.file_name]
    assert len(rows_of(folder / str(ledger.file_name))) == 3


def test_an_export_recorded_but_not_yet_renamed_is_published_when_the_process_starts(
    two_partners: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outbound audit: it waited for the connection's next export, which for a pickup
    exported on demand only may never come; `serve` starting again publishes it."""
    from connectbatch.store import exports as export_store

    services = two_partners
    folder = services.settings.outbound / str(services.connection("Acme pickup").id)
    with monkeypatch.context() as stopped:
        stopped.setattr(export_store, "publish", lambda _target: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            services.export_now("Acme pickup")
    [ledger] = services.exports("Acme pickup")

    Services(services.settings).startup()  # the process started again

    assert [p.name for p in folder.iterdir()] == [ledger.file_name]


def test_a_pickup_that_delivered_files_cannot_move_to_another_partner(two_partners: Services) -> None:
    """Its folder holds the first partner's rows, and its login (which follows it) serves that
    folder: moved, the other partner would collect them, and the first partner, who holds the
    login, would collect the other's next exports. A new pickup is the way; one that has
    delivered nothing yet (a partner chosen wrongly at setup) may still move."""
    services = two_partners
    services.create_connection(
        Connection(
            "Spare pickup", "call_conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US
        ),
        partner="Acme",
    )
    assert (
        services.update_connection("Spare pickup", partner="Rival").partner_id == services.partner("Rival").id
    )

    assert len(exported(services, "Acme pickup")) == 3
    with pytest.raises(InvalidInputError, match="already delivered") as refused:
        services.update_connection("Acme pickup", partner="Rival")
    assert refused.value.field == "partner"
    assert services.connection("Acme pickup").partner_id == services.partner("Acme").id
    assert exported(services, "Acme pickup") == []  # and Rival's rows never go to Acme's login


def test_an_inbound_connection_that_loaded_files_cannot_move_to_another_partner(
    two_partners: Services,
) -> None:
    """Found by a partner manager: moving Acme's inbound connection to Rival handed Rival
    its history (Rival's export carried Acme's calls, and Rival's modifications file could
    reverse Acme's actions). One that loaded nothing yet may still move."""
    services = two_partners
    services.create_connection(
        Connection("Spare calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH),
        partner="Acme",
    )
    assert (
        services.update_connection("Spare calls", partner="Rival").partner_id == services.partner("Rival").id
    )

    with pytest.raises(InvalidInputError, match="has loaded files of its partner") as refused:
        services.update_connection("Acme calls", partner="Rival")
    assert refused.value.field == "partner"
    assert services.connection("Acme calls").partner_id == services.partner("Acme").id


def test_an_export_sets_the_pickups_status_and_a_failed_one_says_why_in_its_history(
    two_partners: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Pull-from-us connection's data transfer is its export: the Connections screen's
    Status and Last Active follow it (Completed; Failed, with the reason in its history, as
    the scheduler's exports fail without anyone watching); nothing new changes neither."""
    from connectbatch.store import exports as export_store

    services = two_partners
    assert services.connection("Acme pickup").status is ConnectionStatus.NONE

    def disk_full(*_args: object) -> None:
        raise OSError("disk full (simulated after the copy)")

    with monkeypatch.context() as patch:
        patch.setattr(export_store, "get", disk_full)
        with pytest.raises(OSError, match="disk full"):
            services.export_now("Acme pickup", trigger="schedule")
    failed = services.connection("Acme pickup")
    assert failed.status is ConnectionStatus.FAILED and failed.last_active is not None
    [event] = services.connection_events("Acme pickup")
    assert event.kind == "export_failed" and "disk full" in event.message

    assert len(exported(services, "Acme pickup")) == 3
    done = services.connection("Acme pickup")
    assert done.status is ConnectionStatus.COMPLETED and done.last_active is not None
    assert done.last_active >= failed.last_active
    assert exported(services, "Acme pickup") == []  # nothing new: nothing transferred
    assert services.connection("Acme pickup") == done
    services.export("Acme pickup", done.last_active - dt.timedelta(days=7), done.last_active)
    window = services.connection("Acme pickup")  # a re-export of a window is a transfer too
    assert window.status is ConnectionStatus.COMPLETED and window.last_active > done.last_active


class _Counted:
    """A connection that counts the statements (and rows of `executemany`) run through it."""

    def __init__(self, con: object) -> None:
        self.con, self.statements = con, 0

    def execute(self, *args: object, **kwargs: object) -> object:
        self.statements += 1
        return self.con.execute(*args, **kwargs)  # type: ignore[attr-defined]

    def executemany(self, sql: str, rows: list[object]) -> object:
        self.statements += len(rows)
        return self.con.executemany(sql, rows)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.con, name)


@pytest.mark.parametrize("rows", [50, 400])
def test_an_export_records_what_it_exported_in_statements_that_do_not_grow_with_it(
    services: Services, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    """Outbound audit: each exported change was recorded with a statement of its own
    (`executemany`, ~0.5 ms a row): an export of 150,000 lock changes held the database about
    a minute, every other command waiting. The same few statements now, whatever the count."""
    from connectbatch.store import exports as export_store

    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    services.ingest_bytes("Acme", "calls.csv", call_csv(rows, prefix="many"))
    services.create_connection(
        Connection("Pickup", "call_conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US)
    )
    services.export_now("Pickup")
    assert services.lock_actions(dt.datetime.now(dt.UTC) + dt.timedelta(days=400), early=True) == rows
    counted: list[_Counted] = []
    export_new = export_store.export_new

    def watched(con: object, *args: object, **kwargs: object) -> object:
        counted.append(_Counted(con))
        return export_new(counted[-1], *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(export_store, "export_new", watched)
    done = services.export_now("Pickup")
    assert done is not None and done.changes == rows
    assert counted[0].statements <= 12, counted[0].statements
