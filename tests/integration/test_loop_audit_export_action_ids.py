"""An outbound export names each row's action as everything else names it: `A-` and the id,
at least six digits (models.Action.label, the results file, status files).

The export wrote `'A-' || lpad(id, 6, '0')`, and DuckDB's lpad also cuts a longer string to
six characters: action 1,234,567 went out as A-123456, another action. A brand's system that
sends modifications or reversals back by that ActionId changes the wrong sale. One file of a
million rows makes a million actions, so the ids get there."""

from __future__ import annotations

import csv
import io

from helpers import call_csv

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

PAST_A_MILLION = 1_234_566  # ids the sequence has handed out before the file's actions


def test_an_action_past_a_million_is_exported_under_its_own_id(services: Services) -> None:
    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    services.create_connection(
        Connection("Pickup", "call_conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US)
    )
    with services.db.transaction() as con:  # as a million earlier actions would have left it
        con.execute(f"SELECT max(nextval('seq_actions')) FROM range({PAST_A_MILLION})").fetchall()
    services.ingest_bytes("Acme", "calls.csv", call_csv(3))
    labels = {a.source_key: a.label for a in services.actions("Acme")}
    assert min(a.id for a in services.actions("Acme")) > 1_000_000

    done = services.export_now("Pickup")

    assert done is not None and done.file_name is not None
    path = services.settings.outbound / str(services.connection("Pickup").id) / done.file_name
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert {r["CallSessionId"]: r["ActionId"] for r in rows} == labels


def test_the_call_data_explorer_names_an_action_past_a_million_by_its_own_id(services: Services) -> None:
    """The explorer's rows (and its download) built ActionId with the same lpad."""
    from connectbatch.store.calls import CallFilter

    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    with services.db.transaction() as con:
        con.execute(f"SELECT max(nextval('seq_actions')) FROM range({PAST_A_MILLION})").fetchall()
    services.ingest_bytes("Acme", "calls.csv", call_csv(3))
    labels = {a.source_key: a.label for a in services.actions("Acme")}

    rows = services.call_rows(CallFilter(), page_size=10).to_pylist()

    assert {r["CallSessionId"]: r["ActionId"] for r in rows} == labels
