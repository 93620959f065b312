"""A connection's History tab shows its events besides runs (issue 11, defects 10 and 11): a
mail that brought nothing (and whether the sender was told), triggers skipped while a run was
going. Partner text in them is escaped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.store import events as event_store

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60


pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def test_the_history_tab_lists_events_with_partner_text_escaped() -> None:
    services = Services()
    draft = Connection("Mailed", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                       pattern="calls_*.csv")  # fmt: skip
    created, _ = services.create_connection(draft)
    now = dt.datetime.now(dt.UTC)
    with services.db.transaction() as con:
        event_store.record(con, created.id, event_store.MAIL_UNMATCHED,
                           "mail from a@p.example 'x\x1b[31m': no attachment", now)  # fmt: skip
    services.record_skipped_trigger(created.id)
    services.record_skipped_trigger(created.id)

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"history_{created.id}").click().run()
    assert not at.exception, at.exception

    [events] = [d.value for d in at.dataframe if "Sender told" in d.value.columns]
    assert set(events["Event"]) == {"Mail with nothing taken", "Scheduled trigger skipped"}
    what = " | ".join(events["What"])
    assert "\\x1b[31m" in what and "\x1b" not in what
    assert "skipped 2 scheduled triggers" in what
