"""No screen shows a Python traceback: a page that fails on something no one foresaw (a bug,
a library's surprise) says so in words and what to do, and its traceback goes to the log.
Streamlit's default drew the whole traceback, file paths and code included."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Role
from connectbatch.services import Services

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def test_a_page_that_fails_unexpectedly_says_what_to_do_and_logs_the_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("an unforeseen bug")

    monkeypatch.setattr(Services, "partner_choices", broken)  # read outside any guard
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.PARTNER_MANAGER).run()
    caplog.set_level(logging.ERROR)

    at.switch_page("app_pages/actions.py").run()

    assert not at.exception, at.exception  # no traceback on the screen
    [error] = at.error
    assert "Pending actions failed unexpectedly (RuntimeError: an unforeseen bug)" in error.value
    assert "Reload the page" in error.value and "admin" in error.value
    assert any(r.exc_info and "an unforeseen bug" in str(r.exc_info[1]) for r in caplog.records)
    at.switch_page("app_pages/call_data.py").run()  # the rest of the app still works
    assert not at.exception and at.title[0].value == "Call data"
