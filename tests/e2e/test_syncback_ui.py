"""Status sync-back in the app (issue 12, part 2): the connection's Edit sets the channels and
the partner's status words; the connection page's "Sync back now" sends the status file."""

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
DETAIL = "app_pages/connection_detail.py"


pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def test_edit_turns_sync_back_on_and_sync_back_now_sends_the_status_file() -> None:
    services = Services()
    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    acme = services.connection("Acme")
    services.ingest_bytes("Acme", "calls.csv", call_csv(2))
    at = log_in(AppTest.from_file(APP, default_timeout=60)).run()
    at.switch_page(DETAIL).run()
    at.query_params["connection"] = str(acme.id)
    at.run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "sync_back_now"]  # off: no button

    at.multiselect(key=f"edit_sync_back_{acme.id}").set_value(["files"])
    at.text_input(key=f"edit_status_words_{acme.id}").input('{"accepted": "approved"}')
    at.button(key="edit_save").click().run()
    assert not at.exception, at.exception
    saved = services.connection(acme.id)
    assert (saved.sync_back, saved.status_words) == (["files"], {"accepted": "approved"})

    at.button(key="sync_back_now").click().run()
    assert not at.exception, at.exception
    assert any("Sent 2 status rows (files)" in s.value for s in at.success)
    [sent] = services.sync_backs(acme.id)
    text = (services.settings.outbound / str(acme.id) / sent.file_name).read_text()
    assert text.count("approved") == 2


def test_the_address_names_the_connection_shown_not_the_one_seen_last() -> None:
    """A link to /connection?connection=N (Partners, Triage, the browser's Back) showed the
    connection this tab had shown last, and rewrote the address to it."""
    services = Services()
    for name in ("Acme", "Bolt"):
        services.create_connection(
            Connection(name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
        )
    acme, bolt = services.connection("Acme"), services.connection("Bolt")
    at = log_in(AppTest.from_file(APP, default_timeout=60)).run()
    at.switch_page(DETAIL).run()
    at.query_params["connection"] = str(acme.id)
    at.run()
    assert any("Acme" in t.value for t in at.title), [t.value for t in at.title]
    at.query_params["connection"] = str(bolt.id)  # a link to the other one
    at.run()
    assert not at.exception, at.exception
    assert any("Bolt" in t.value for t in at.title), [t.value for t in at.title]
    assert at.query_params["connection"] in (str(bolt.id), [str(bolt.id)])
