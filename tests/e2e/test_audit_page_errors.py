"""When the Validation or the Triage page cannot be drawn, its message quotes the error, and an
error's text quotes partner text as likely as not (a connection's or a file's name, a key): it
is shown literally, as the other pages' failures are (`_auth.page_failed`, `_ui.show_error`),
never as Markdown (an attacker audit, 2026-12-07)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
NAME = "**Acme** [pay here](http://evil.example)"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def raising(exc: Exception) -> object:
    def call(*_args: object, **_kwargs: object) -> object:
        raise exc

    return call


@pytest.mark.parametrize(
    "exc", [ConnectBatchError(f"no run of {NAME!r}"), KeyError(NAME)], ids=["ours", "a bug"]
)
@pytest.mark.parametrize(
    ("page", "service"), [("app_pages/validation.py", "review_queue"), ("app_pages/triage.py", "triage")]
)
def test_a_pages_failure_quotes_the_error_literally(
    monkeypatch: pytest.MonkeyPatch, page: str, service: str, exc: Exception
) -> None:
    monkeypatch.setattr(Services, service, raising(exc))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert markdown_text(NAME) in error, error


@pytest.mark.parametrize(
    "exc", [ConnectBatchError(f"no run of {NAME!r}"), KeyError(NAME)], ids=["ours", "a bug"]
)
def test_a_failed_release_from_triage_quotes_the_error_literally(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    services = Services()
    services.add_partner("Acme", "vendor")
    draft = Connection("Calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                       pattern="*", lock_days=3)  # fmt: skip
    created, _ = services.create_connection(draft, partner="Acme")
    held = services.ingest_bytes(
        created.id, "calls.csv", call_csv(3, overrides={1: {"CallSessionId": "cs-0000"}})
    )
    assert held.review == "quarantined"
    monkeypatch.setattr(Services, "release", raising(exc))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/triage.py").run()
    at.button(key=f"triage_release_{held.id}").click().run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert error.startswith(f"Run {held.id} was not released") and markdown_text(NAME) in error, error
