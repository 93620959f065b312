"""A connection's History tab tells what happened to it, for every kind of connection (a new
analyst's audit, 2026-12-07):

* an outbound (Pull from us) connection that had exported showed Completed and a Last Active
  of a minute ago, and its History said "No runs yet. Files arrive by themselves.": exports
  are its history, and they were nowhere on the tab;
* a pull connection without runs sent the person to "Run now on the Connections list" while
  the Run now button is on the same page, above the tabs."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def history(connection_id: int) -> AppTest:
    """The connection's page on its History tab, opened from the list's View History."""
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"history_{connection_id}").click().run()
    assert not at.exception, at.exception
    return at


def test_an_outbound_connections_history_lists_its_exports() -> None:
    services = Services()
    services.add_partner("Acme", "brand")
    for name, direction, methodology in (
        ("Acme calls", Direction.INBOUND, Methodology.PUSH),
        ("Acme pickup", Direction.OUTBOUND, Methodology.PULL_FROM_US),
    ):
        services.create_connection(
            Connection(name, "call_conversions", direction, Method.SFTP, methodology), partner="Acme"
        )
    services.ingest_bytes("Acme calls", "calls.csv", call_csv(3))
    services.export_now("Acme pickup")
    pickup = services.connection("Acme pickup")

    at = history(pickup.id)
    infos = " ".join(i.value for i in at.info)
    assert "No runs yet" not in infos and "arrive by themselves" not in infos, infos
    [exports] = [d.value for d in at.dataframe if "New rows" in d.value.columns]
    assert list(exports["Rows"]) == [3]
    assert list(exports["File"]) == [services.exports(pickup.id)[0].file_name]


def test_an_outbound_connection_without_exports_points_to_export_now() -> None:
    services = Services()
    services.add_partner("Acme", "brand")
    draft = Connection(
        "Acme pickup", "call_conversions", Direction.OUTBOUND, Method.SFTP, Methodology.PULL_FROM_US
    )
    pickup, _ = services.create_connection(draft, partner="Acme")

    at = history(pickup.id)
    infos = " ".join(i.value for i in at.info)
    assert "No exports yet. Use Export now above" in infos, infos
    assert "arrive by themselves" not in infos


def test_a_pull_without_runs_points_to_the_run_now_button_on_the_same_page() -> None:
    services = Services()
    services.add_partner("Acme", "vendor")
    pull, _ = services.create_connection(
        Connection(
            "Acme daily", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
            pattern="calls_*.csv", host="sftp.acme.example", folder="/out",
        ),
        partner="Acme",
    )  # fmt: skip

    at = history(pull.id)
    assert at.button(key="detail_run_now")  # the button the message names is on this page
    infos = " ".join(i.value for i in at.info)
    assert "No runs yet. Use Run now above." in infos, infos
    assert "Connections list" not in infos
