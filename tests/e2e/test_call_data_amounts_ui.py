"""Call data's table shows its money columns to the cent, as the Pending actions page does.
The grid drops a DECIMAL's trailing zeros: an action of $0.00 read "0" next to "785.58" (seen
in Chromium on the demo; the grid draws on a canvas, so the format the page gives each column is
what is checked here)."""

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

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def test_the_call_tables_amounts_are_shown_to_the_cent() -> None:
    services = Services()
    draft = Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    services.create_connection(draft)
    services.ingest_bytes("Acme calls", "one.csv", call_csv(4, prefix="one"))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "pam", Role.PARTNER_MANAGER)
    at.switch_page("app_pages/call_data.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0]
    assert {"SaleAmount", "ActionAmount"} <= set(table.value.columns)
    config = json.loads(table.proto.columns or "{}")
    for column in ("SaleAmount", "ActionAmount"):
        shown = config.get(column, {})
        assert shown.get("type_config", {}).get("format") == "%.2f", (column, shown)
