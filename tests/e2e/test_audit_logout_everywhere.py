"""Log out ends the login in every tab and browser, and so does a new password (README). A tab
that logged in through the form learnt which session it was only at its first run after its
browser traded the handoff token for the cookie: one that stayed idle until its user logged
out elsewhere, or whose browser never traded (the image blocked), kept working for the whole
CONNECTBATCH_SESSION_HOURS (an attacker audit, 2026-12-07: a login left open on a shared
computer, or an intruder's tab, survived "Log out" and a password reset). The tab now has a
session of its own from the login on (`_auth._submit`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages._auth import HANDOFF_KEY
from connectbatch.models import Role
from connectbatch.services import Services
from connectbatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


@pytest.fixture
def services() -> Services:
    found = Services(Settings.from_env())
    found.add_user("ann", Role.ANALYST, PASSWORD)
    return found


def logged_in_tab() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.text_input(key="login_name").input("ann")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert [t.value for t in at.title] == ["Connections"]
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_an_idle_tab_is_logged_out_when_its_user_logs_out_in_another_browser(services: Services) -> None:
    idle = logged_in_tab()
    token, _deadline = idle.session_state[HANDOFF_KEY]
    assert services.redeem_handoff(token) is not None  # its browser took the cookie (the image)

    elsewhere = logged_in_tab()
    elsewhere.button(key="logout").click().run()
    assert titles(elsewhere) == ["ConnectBatch"]

    idle.run()
    assert titles(idle) == ["ConnectBatch"]  # the login form, nothing else


def test_a_tab_whose_browser_never_took_the_cookie_is_logged_out_by_a_new_password(
    services: Services,
) -> None:
    blocked = logged_in_tab()  # its image never asks for the cookie
    services.set_user_password("ann", "another long password")
    blocked.run()
    assert titles(blocked) == ["ConnectBatch"]


def test_once_the_browser_took_the_cookie_the_tab_keeps_one_session(services: Services) -> None:
    tab = logged_in_tab()
    token, _deadline = tab.session_state[HANDOFF_KEY]
    assert services.redeem_handoff(token) is not None
    tab.run()
    assert titles(tab) == ["Connections"]
    with services.db.connect() as con:
        kinds = [
            r[0] for r in con.execute("SELECT kind FROM app_sessions WHERE user_name = 'ann'").fetchall()
        ]
    assert kinds == ["session"]  # the browser's; the tab's own was ended, not left behind
    tab.button(key="logout").click().run()
    assert titles(tab) == ["ConnectBatch"]
    with services.db.connect() as con:
        assert con.execute("SELECT count(*) FROM app_sessions").fetchone() == (0,)
