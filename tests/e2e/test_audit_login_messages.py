"""The login form quotes the name a stranger typed when it refuses it ("too many failed logins
for '...'"): shown as typed, never as Markdown, so the form cannot be made to show a link or
bold words of the typist's choosing (an attacker audit, 2026-12-07)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from connectbatch.escaping import markdown_text
from connectbatch.services.users import FAILURES_ALLOWED

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
TYPED = "**Support** [call us](http://evil.example)"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def test_a_throttled_name_is_quoted_as_typed_on_the_login_form() -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for _ in range(FAILURES_ALLOWED + 1):
        at.text_input(key="login_name").input(TYPED)
        at.text_input(key="login_password").input("not the password")
        at.button[0].click().run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert "too many failed logins" in error and markdown_text(f"'{TYPED}'") in error, error
