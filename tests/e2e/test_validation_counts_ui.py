"""The Validation page's tables show counts with thousands separators, as the page's own text
does ("1,488 rows"): the grid showed a run of 1,488 accepted rows as "1488" (seen in Chromium on
the demo; the grid draws on a canvas, so the format the page gives each column is what is
checked here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology, Role
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
COUNTS = ("Critical", "Warnings", "Rows accepted", "Rows rejected")

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def test_the_runs_and_files_tables_show_counts_with_thousands_separators() -> None:
    services = Services()
    draft = Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    services.create_connection(draft)
    services.ingest_bytes("Acme calls", "big.csv", call_csv(1200, prefix="big"))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "rita", Role.REVIEWER)
    at.switch_page("app_pages/validation.py").run()
    assert not at.exception, at.exception
    tables = [t for t in at.dataframe if "Rows accepted" in t.value.columns]
    assert len(tables) == 2, [list(t.value.columns) for t in at.dataframe]  # the runs, the run's files
    assert 1200 in tables[0].value["Rows accepted"].tolist()
    for table in tables:
        config = json.loads(table.proto.columns or "{}")
        for column in COUNTS:
            if column in table.value.columns:
                shown = config.get(column, {}).get("type_config", {})
                assert shown.get("format") == "localized", (column, config.get(column))


def test_a_connections_history_shows_counts_with_thousands_separators() -> None:
    """The same on the connection's History tab: its runs and the chosen run's files."""
    services = Services()
    draft = Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    created, _ = services.create_connection(draft)
    services.ingest_bytes("Acme calls", "big.csv", call_csv(1200, prefix="big"))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "ann", Role.ANALYST).run()
    at.button(key=f"history_{created.id}").click().run()
    assert not at.exception, at.exception
    tables = [t for t in at.dataframe if {"Rows accepted", "Run"} & set(t.value.columns)]
    assert len(tables) == 2, [list(t.value.columns) for t in at.dataframe]  # the runs, the run's files
    for table in tables:
        config = json.loads(table.proto.columns or "{}")
        for column in ("Files", "Rows accepted", "Rejected", "Duplicates", "Rows rejected"):
            if column in table.value.columns:
                shown = config.get(column, {}).get("type_config", {})
                assert shown.get("format") == "localized", (column, config.get(column))


def test_a_held_runs_rows_read_held_and_a_released_runs_duplicates_are_counted() -> None:
    """App audit: a held run's metric read "Rows accepted 300" where its history said 0; once
    released it read "Rows accepted 2 · Rows rejected 0" beside 298 rejects to download, the
    298 left out as duplicates said nowhere on the page."""
    services = Services()
    draft = Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    services.create_connection(draft)
    services.ingest_bytes("Acme calls", "first.csv", call_csv(10, prefix="k"))
    held = services.ingest_bytes("Acme calls", "again.csv", call_csv(12, prefix="k"))  # 10 loaded before
    assert held.review == "quarantined"

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "rita", Role.REVIEWER)
    at.switch_page("app_pages/validation.py").run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}.get("Rows held") == "12"

    services.release(held.id, actor="rita")
    at.run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}.get("Rows accepted") == "2"
    assert any("10 rows left out as duplicates" in c.value for c in at.caption)
