"""A value typed into a filter that takes new options (Campaign, MediaId) and is no number is
refused with a message that quotes it: that quote is shown as typed, not as Markdown (a typed
`**1** [x](http://e.example)` showed bold and as a link), as `_filters` promises (an attacker
audit, 2026-12-07)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.escaping import markdown_text
from connectbatch.models import Connection, Direction, Method, Methodology, Role
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
TYPED = "**1** [x](http://e.example)"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def test_a_typed_campaign_that_is_no_number_is_quoted_as_typed() -> None:
    services = Services()
    services.add_partner("Acme", "vendor")
    draft = Connection(
        "Calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*"
    )
    created, _ = services.create_connection(draft, partner="Acme")
    services.ingest_bytes(created.id, "calls.csv", call_csv(3))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.PARTNER_MANAGER).run()
    at.switch_page("app_pages/call_data.py").run()
    at.multiselect(key="calls_campaigns").set_value([TYPED]).run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert markdown_text(f"'{TYPED}'") in error, error
