"""A scheduled "Pull from us" export whose time passed while no engine ran (`serve` stopped
over its 02:00) is written once when the engine starts, as a missed pull is: jobs live in
memory, and the partner who collects each morning waited a whole day more for its file."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
from helpers import call_csv
from helpers.clock import Clock

from connectbatch.engine import Engine
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.settings import Settings


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    started = Engine(Services(settings))
    yield started
    started.stop()


def test_an_export_missed_while_serve_was_stopped_is_written_once_at_start(
    settings: Settings, engine: Engine
) -> None:
    two_days_ago = Services(settings, clock=Clock(dt.datetime.now(dt.UTC) - dt.timedelta(days=2)))
    two_days_ago.add_partner("Acme", "brand")
    for name, direction, methodology, schedule in (
        ("Acme calls", Direction.INBOUND, Methodology.PUSH, None),
        ("Acme pickup", Direction.OUTBOUND, Methodology.PULL_FROM_US, "0 2 * * *"),
    ):
        two_days_ago.create_connection(
            Connection(name, "call_conversions", direction, Method.SFTP, methodology, schedule=schedule),
            partner="Acme",
        )
    services = engine.services
    services.ingest_bytes("Acme calls", "calls.csv", call_csv(3, prefix="acme"))

    engine.start(servers=False)
    deadline = time.monotonic() + 20
    while not services.exports("Acme pickup") and time.monotonic() < deadline:
        time.sleep(0.25)
    time.sleep(1)

    (done,) = services.exports("Acme pickup")
    assert (done.trigger, done.rows) == ("schedule", 3)
