"""The Pending actions page's change form names its fields as the form labels them (an audit
of 2026-12-07): Apply with nothing selected said "actions: select at least one action", a
reversal without a reason "reason: is required to reverse an action" (the keys of the
service's fields, in lower case), unlike every other form of the app."""

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


def test_apply_with_no_action_selected_names_the_field_as_labelled() -> None:
    services = Services()
    services.add_partner("Acme", "vendor")
    created, _ = services.create_connection(
        Connection(
            "Calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*"
        ),
        partner="Acme",
    )
    services.ingest_bytes(created.id, "calls.csv", call_csv(3))

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/actions.py").run()
    at.button(key="actions_apply").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["Actions to change: select at least one action"]

    at.multiselect(key="actions_selected").set_value([at.multiselect(key="actions_selected").options[0]])
    at.radio(key="actions_change").set_value("Reverse")
    at.button(key="actions_apply").click().run()
    assert [e.value for e in at.error] == ["Reason: is required to reverse an action"]
