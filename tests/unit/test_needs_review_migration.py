"""Migration 011 (issue 11): a batch held for review before "Needs review" existed was stored
as Failed; it now reads Needs review, and so does its connection when that run is its latest.
A run with a failed file stays Failed."""

from __future__ import annotations

from pathlib import Path

from connectbatch.models import Connection, ConnectionStatus, Direction, Method, Methodology, RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings
from tests.helpers import call_csv


def test_held_runs_stored_as_failed_read_needs_review(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path))
    for name in ("Held", "Broken"):
        services.create_connection(Connection(name, "call_conversions", Direction.INBOUND, Method.SFTP,
                                              Methodology.PUSH))  # fmt: skip
    held = services.ingest_bytes("Held", "neg.csv", call_csv(3, overrides={0: {"SaleAmount": "-1"}}))
    broken = services.ingest_bytes("Broken", "empty.csv", b"")
    with services.db.transaction() as con:  # as stored before issue 11
        con.execute("UPDATE runs SET status = 'Failed'")
        con.execute("UPDATE connections SET status = 'Failed', late_events = NULL")
        con.execute("DELETE FROM schema_migrations WHERE version = 11")

    again = Services(Settings(home=tmp_path))
    assert again.run(held.id).status is RunStatus.NEEDS_REVIEW
    assert again.run(broken.id).status is RunStatus.FAILED
    assert again.connection("Held").status is ConnectionStatus.NEEDS_REVIEW
    assert again.connection("Broken").status is ConnectionStatus.FAILED
    assert again.connection("Held").late_events == "lock"
