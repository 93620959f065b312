"""Every data type, end to end: a file is ingested through the services (as an upload, a
push or a pull hands it over), validated, stored in data_<type>, visible through the query
the app's screen for that type uses, answered with a results file, and exported to an
outbound "Pull from us" connection of the same data type.

One delivery per data type (25 rows, data row 3 broken, so one reject below the reject-rate
threshold); each stage is its own test so a failure names the stage. The files are built
from the schema registry (tests/helpers/typed.py), so a column added to a type is covered
here at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.store import count, results_of
from helpers.typed import BAD_VALUE, breakable_column, typed_csv

from connectbatch import schemas
from connectbatch.browse import BrowseFilter
from connectbatch.explorer import CallFilter
from connectbatch.models import ActionStatus, Connection, Direction, Method, Methodology, Run, RunStatus
from connectbatch.services import Services
from connectbatch.store.db import all_rows

DATA_TYPES = list(schemas.REGISTRY)
N = 25
BROKEN = 3  # data row 3 (0-based) = physical line 5
BROKEN_LINE = BROKEN + 2
MAKES_ACTIONS = {k for k, t in schemas.REGISTRY.items() if t.action_columns is not None}


@dataclass
class Delivery:
    data_type: str
    connection: Connection
    run: Run
    accepted: list[str]  # key values of the rows that should load
    rejected: str  # key value of the broken row
    # modifications: the conversions connection whose actions the file changes
    target: Connection | None = None


def _key(data_type: str) -> str:
    return schemas.get(data_type).key_columns[0]


def deliver(services: Services, make_connection, data_type: str) -> Delivery:
    """One file of `data_type` through the pipeline; for modifications, first the
    conversions whose actions the file changes (odd rows reversed, even rows set to 5.00)."""
    target = None
    if data_type == "action_modifications":
        target = make_connection("Orders", "conversions")
        base = services.ingest_bytes("Orders", "orders.csv", typed_csv("conversions", N, prefix="ord"))
        assert base.status is RunStatus.COMPLETED and base.actions_created == N, base.reason
        labels = sorted(a.label for a in services.actions("Orders", limit=1000))
        overrides = {
            i: {"ActionId": label}
            | ({} if i == BROKEN else {"Amount": "0" if i % 2 else "5.00", "Reason": "Returned"})
            for i, label in enumerate(labels)
        }
        data = typed_csv(data_type, N, broken={BROKEN}, overrides=overrides)
        keys = labels
    else:
        data = typed_csv(data_type, N, prefix=data_type[:3], broken={BROKEN})
        keys = [f"{data_type[:3]}-{i:04d}" for i in range(N)]
    connection = make_connection(f"Inbound {data_type}", data_type)
    run = services.ingest_bytes(connection.name, f"{data_type}_1.csv", data)
    accepted = [k for i, k in enumerate(keys) if i != BROKEN]
    return Delivery(data_type, connection, run, accepted, keys[BROKEN], target)


@pytest.fixture(params=DATA_TYPES)
def delivery(request: pytest.FixtureRequest, services: Services, make_connection) -> Delivery:
    return deliver(services, make_connection, request.param)


# ------------------------------------------------------------------ ingested + validated


def test_ingested(delivery: Delivery, services: Services) -> None:
    run = delivery.run
    assert run.status is RunStatus.COMPLETED, run.reason
    assert run.review is None
    assert (run.files_seen, run.files_loaded) == (1, 1)
    [f] = services.run_files(run.id)
    assert f.state == "loaded" and (f.rows_accepted, f.rows_rejected) == (N - 1, 1)
    if delivery.data_type in MAKES_ACTIONS:
        assert run.actions_created == N - 1 == services.count_actions(delivery.connection.name)
    elif delivery.data_type == "action_modifications":
        # a modifications file creates no actions: the run counts the N - 1 it changed
        assert services.count_actions() == N and (run.actions_created, run.actions_changed) == (0, N - 1)
    else:
        assert run.actions_created == 0 == services.count_actions()


def test_validated(delivery: Delivery, services: Services) -> None:
    run = delivery.run
    assert (run.rows_accepted, run.rows_rejected) == (N - 1, 1)
    [reject] = services.rejects(run.id)
    column = breakable_column(delivery.data_type)
    assert (reject.line, reject.column, reject.value) == (BROKEN_LINE, column, BAD_VALUE)
    assert reject.reason
    [(_file_id, report)] = services.validation(run.id)
    assert report.success and report.critical_failures == []
    assert (report.rows_accepted, report.rows_rejected) == (N - 1, 1)
    assert report.outcomes  # the data type's expectation suite ran


# ------------------------------------------------------------------ stored


def stored_keys(services: Services, data_type: str, run_id: int) -> list[str]:
    with services.db.connect() as con:
        rows = con.execute(
            f'SELECT "{_key(data_type)}" FROM {all_rows(data_type)} WHERE run_id = ? ORDER BY line',
            [run_id],
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_stored(delivery: Delivery, services: Services) -> None:
    run = delivery.run
    assert count(services, delivery.data_type, run_id=run.id) == N - 1
    assert count(services, delivery.data_type, run_id=run.id, line=BROKEN_LINE) == 0
    assert count(services, delivery.data_type, connection_id=delivery.connection.id) == N - 1
    assert stored_keys(services, delivery.data_type, run.id) == delivery.accepted


# ------------------------------------------------------------------ visible


def visible_keys(services: Services, delivery: Delivery) -> list[str]:
    """The key values the app's screen for the type shows (the query that screen calls)."""
    data_type = delivery.data_type
    if data_type == "call_conversions":  # the call-data explorer
        assert services.call_summary(CallFilter()).kpis.calls == N - 1
        return [
            str(v)
            for v in services.call_rows(CallFilter(), page_size=1000).column("CallSessionId").to_pylist()
        ]
    if data_type == "conversions":  # pending actions
        page = services.find_actions(delivery.connection.name, page_size=1000)
        assert page.total == N - 1
        assert {a.status for a in page.actions} == {ActionStatus.PENDING}
        return [a.source_key for a in page.actions]
    if data_type == "action_modifications":  # pending actions of the changed connection
        assert delivery.target is not None
        page = services.find_actions(delivery.target.name, page_size=1000)
        changed = {a.label: a for a in page.actions if a.label in delivery.accepted}
        for label, action in changed.items():
            i = delivery.accepted.index(label)
            # odd data rows reverse, even ones set 5.00 (row numbers in the file, BROKEN skipped)
            row = i if i < BROKEN else i + 1
            if row % 2:
                assert (action.status, action.amount) == (ActionStatus.REVERSED, Decimal("0.00")), label
            else:
                assert (action.status, action.amount) == (ActionStatus.MODIFIED, Decimal("5.00")), label
        untouched = next(a for a in page.actions if a.label == delivery.rejected)
        assert untouched.status is ActionStatus.PENDING
        return list(changed)
    # clicks, product catalogs: the data browser
    summary = services.browse_summary(data_type, BrowseFilter())
    assert summary.rows == N - 1
    rows = services.browse_rows(data_type, BrowseFilter(), page_size=1000)
    return [str(v) for v in rows.column(_key(data_type)).to_pylist()]


def test_visible(delivery: Delivery, services: Services) -> None:
    assert sorted(visible_keys(services, delivery)) == sorted(delivery.accepted)


# ------------------------------------------------------------------ results file


def test_results_file(delivery: Delivery, services: Services) -> None:
    rows, summary = results_of(services, delivery.connection.name, delivery.run.id)
    assert [int(r["Line"]) for r in rows] == list(range(2, N + 2))
    statuses = {int(r["Line"]): r["Status"] for r in rows}
    assert statuses.pop(BROKEN_LINE) == "REJECTED"
    assert set(statuses.values()) == {"ACCEPTED"}
    key = _key(delivery.data_type)
    assert [r[key] for r in rows if r["Status"] == "ACCEPTED"] == delivery.accepted
    rejected = next(r for r in rows if int(r["Line"]) == BROKEN_LINE)
    assert rejected[key] == delivery.rejected
    assert BAD_VALUE in rejected["Reason"]
    assert (summary["rows_accepted"], summary["rows_rejected"]) == (N - 1, 1)
    assert summary["status"] == "loaded"


# ------------------------------------------------------------------ exported


def exported_rows(services: Services, outbound: Connection) -> list[dict[str, str]]:
    """What the outbound connection's partner collects after an export of the last week
    (the one place that knows the export API: adapt here when it changes)."""
    now = dt.datetime.now(dt.UTC)
    path: Path = services.export(outbound.name, now - dt.timedelta(days=7), now + dt.timedelta(minutes=1))
    assert path.parent == services.settings.outbound / str(outbound.id)
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_exported(delivery: Delivery, services: Services) -> None:
    data_type = delivery.data_type
    outbound, login = services.create_connection(
        Connection(
            f"Pickup {data_type}", data_type, Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US
        )
    )
    assert login is not None

    rows = exported_rows(services, outbound)

    key = _key(data_type)
    assert sorted(r[key] for r in rows) == sorted(delivery.accepted)
    assert set(rows[0]) >= set(schemas.get(data_type).column_names)
    if data_type in MAKES_ACTIONS:
        assert {r["ActionStatus"] for r in rows} == {"PENDING"}
