"""A batch held for review stays in sight when a later file of the connection fails (an
audit of 2026-12-07): the status then reads Failed (a failure outranks a held batch), and the
Connections list, its "Needs review" status filter and the connection's page lost every sign
of the batch still waiting on the Validation page, while its rows drew nearer their lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, ConnectionStatus, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def review_links(at: AppTest) -> list[Any]:
    return [e.proto for e in at.get("page_link") if "Needs review" in e.proto.label]


@pytest.fixture
def held_then_failed() -> tuple[int, int]:
    """(connection id, held run id): a quarantined batch, then a file that failed."""
    services = Services()
    services.add_partner("Acme", "vendor")
    created, _ = services.create_connection(
        Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   pattern="*"),
        partner="Acme",
    )  # fmt: skip
    held = services.ingest_bytes(created.id, "day1.csv", call_csv(5, overrides={0: {"SaleAmount": "-1"}}))
    assert held.review == "quarantined"
    services.ingest_bytes(created.id, "day2.csv", b"not,a\x00,csv\r\n")
    assert services.connection(created.id).status is ConnectionStatus.FAILED
    return created.id, held.id


def test_the_list_links_a_held_batch_after_a_later_failure(held_then_failed: tuple[int, int]) -> None:
    _connection_id, run_id = held_then_failed
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    assert not at.exception, at.exception
    [link] = review_links(at)
    assert f"run={run_id}" in link.query_string

    at.multiselect(key="filter_status").set_value(["Needs review"]).run()
    assert "1 of 1 connections" in [c.value for c in at.caption], [c.value for c in at.caption]


def test_the_connection_page_links_a_held_batch_after_a_later_failure(
    held_then_failed: tuple[int, int],
) -> None:
    connection_id, run_id = held_then_failed
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"edit_{connection_id}").click().run()
    assert not at.exception, at.exception
    [link] = review_links(at)
    assert f"run={run_id}" in link.query_string
