"""A results file's download button is labelled with the partner's file name, and a button's
label is Markdown: a file named `__daily__.csv` read as "_daily_.csv" in italics (Chromium,
2026-12-07). The History tab's and the Validation page's buttons show the name as sent
(an attacker audit, 2026-12-07)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.escaping import markdown_text
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
SENT = "__daily__x_.csv"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def labels(at: AppTest) -> list[str]:
    return [str(b.proto.label) for b in at.get("download_button")]


@pytest.fixture
def delivered() -> int:
    """A connection that received one file named SENT; its run is quarantined (a bad row)."""
    services = Services()
    services.add_partner("Acme", "vendor")
    created, _ = services.create_connection(
        Connection(
            "Calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*"
        ),
        partner="Acme",
    )
    services.ingest_bytes(created.id, SENT, call_csv(4, overrides={0: {"CallDuration": "x"}}))
    return created.id


def test_the_history_tabs_results_buttons_name_the_file_as_sent(delivered: int) -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"history_{delivered}").click().run()
    assert not at.exception, at.exception
    shown = [label for label in labels(at) if "daily" in label]
    assert shown == [f"Results of {markdown_text(SENT)}", f"Summary of {markdown_text(SENT)}"], labels(at)


def test_the_validation_pages_results_buttons_name_the_file_as_sent(delivered: int) -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/validation.py").run()
    assert not at.exception, at.exception
    shown = [label for label in labels(at) if "daily" in label]
    assert shown and all(markdown_text(SENT) in label for label in shown), labels(at)
