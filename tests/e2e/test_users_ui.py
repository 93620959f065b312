"""The Users page as an admin uses it on the first day: a person who forgot their password,
or was disabled, hears "ask an admin", and the admin helps them from the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.app_login import PASSWORD, log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Role
from connectbatch.services import Services

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def test_an_admin_resets_a_forgotten_password_in_the_app_shown_once() -> None:
    """A new password, shown once, which also enables a disabled user again (the CLI's
    `user password`); before, the page could only add and disable users."""
    services = Services()
    services.add_user("dora", Role.REVIEWER, PASSWORD)
    services.disable_user("dora")
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/users.py").run()

    at.selectbox(key="users_reset_name").set_value("dora")
    at.button(key="users_reset").click().run()

    assert not at.exception
    assert "dora" in at.success[0].value and "not shown again" in at.success[0].value
    [code] = at.code
    assert services.authenticate("dora", code.value).name == "dora"  # enabled again, new password
    at.run()
    assert not at.code  # once
