"""Issue 11, defect 8 in the app: a batch held for review reads "Needs review" (not Failed)
on the Connections list, the connection's page and its history, and links to its run on the
Validation page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch import webapp
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from tests.helpers import call_csv

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
DETAIL = "app_pages/connection_detail.py"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def fresh_engine(app_environment: None) -> Iterator[None]:
    webapp.engine.clear()
    yield
    engine, _ = webapp.engine()
    engine.stop()
    webapp.engine.clear()


def page_links(at: AppTest) -> list[Any]:
    """The st.page_link elements of the page (AppTest has no accessor of its own)."""
    return [e for e in at.get("page_link")]


def held_connection() -> tuple[Services, int, int]:
    services = Services()
    created, _ = services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    run = services.ingest_bytes("Acme", "neg.csv", call_csv(5, overrides={0: {"SaleAmount": "-1"}}))
    assert run.review == "quarantined"
    return services, created.id, run.id


def test_a_held_batch_reads_needs_review_with_a_link_to_it() -> None:
    _services, connection_id, run_id = held_connection()
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    assert not at.exception, at.exception

    shown = "\n".join(m.value for m in at.markdown)
    assert "Failed" not in shown
    links = [link.proto for link in page_links(at)]
    [review] = [p for p in links if p.label == "Needs review"]
    assert review.page.endswith("validation") or "validation" in review.page
    assert f"run={run_id}" in review.query_string

    at.switch_page(DETAIL).run()
    assert not at.exception, at.exception
    assert any("Needs review" in p.proto.label for p in page_links(at))
    at.session_state["detail_tab"] = "History"
    at.run()
    history = next(d.value for d in at.dataframe if "Status" in d.value.columns)
    assert list(history["Status"]) == ["Needs review"]
    assert connection_id


def test_the_validation_page_opens_the_linked_run() -> None:
    services, _connection_id, held = held_connection()
    later = services.ingest_bytes(
        "Acme", "neg2.csv", call_csv(5, prefix="b", overrides={0: {"SaleAmount": "-1"}})
    )
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.query_params["run"] = str(held)
    at.switch_page("app_pages/validation.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="validation_run").value == held != later.id
