"""A connection with a batch held for review cannot be deleted from under it (an audit of
2026-12-07): deleted, its batch stayed on the Validation page for good, "Awaiting review 1",
Release said the connection was deleted and Discard "unexpected LookupError: no connection
with id 1". The Delete tab now says what to do first; a batch orphaned before that is
refused in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.errors import ConnectBatchError
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.store import connections as connection_store

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
NAME = "Acme calls"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


@pytest.fixture
def held() -> tuple[Services, int, int]:
    """(services, connection id, id of its run held for review)."""
    services = Services()
    services.add_partner("Acme", "vendor")
    created, _ = services.create_connection(
        Connection(NAME, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*"),
        partner="Acme",
    )
    run = services.ingest_bytes(created.id, "day1.csv", call_csv(5, overrides={0: {"SaleAmount": "-1"}}))
    assert run.review == "quarantined"
    return services, created.id, run.id


def test_the_delete_tab_refuses_while_a_batch_is_held_and_says_what_to_do(
    held: tuple[Services, int, int],
) -> None:
    services, connection_id, run_id = held
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"edit_{connection_id}").click().run()
    at.session_state["detail_tab"] = "Delete"
    at.run()
    at.text_input(key=f"delete_confirm_{connection_id}").input(NAME).run()
    at.button(key="delete_connection").click().run()
    assert not at.exception, at.exception

    errors = [e.value for e in at.error]
    assert len(errors) == 1 and f"held for review (run {run_id})" in errors[0], errors
    assert "release or discard them on the Validation page first" in errors[0]
    assert services.connection(connection_id).name == NAME  # still there
    assert [r.id for r in services.quarantined()] == [run_id]


def test_discarding_a_batch_whose_connection_is_gone_is_refused_in_words(
    held: tuple[Services, int, int],
) -> None:
    services, connection_id, run_id = held
    with services.db.transaction() as con:  # deleted as the app did before it refused to
        connection_store.delete(con, connection_id)
    with pytest.raises(ConnectBatchError, match=f"^the connection of run {run_id} was deleted"):
        services.discard(run_id, "gone")
