"""What the Create connection wizard and the Users page tell a new person (an audit of
2026-12-07):

* step 4 of a push connection named the server partners log in to by the address the app
  binds (127.0.0.1, 0.0.0.0), while the login shown after Create names the public host
  (CONNECTBATCH_PUBLIC_HOST): two different servers for one connection;
* a field's problem is labelled as the form labels the field: "partner: a partner named
  'Acme' already exists" stood beside "Name: is required", and the Users and Partners
  pages said "name: a user named 'dora' already exists", "media_ids: 'abc' is not a
  MediaId"."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
PUBLIC_HOST = "sftp.partners.example"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def wizard() -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/connection_wizard.py").run()
    assert not at.exception, at.exception
    return at


def next_step(at: AppTest) -> None:
    at.button(key="wiz_next").click().run()
    assert not at.exception, at.exception


def credentials_step(name: str, method: str) -> AppTest:
    """The wizard on its credentials step for a push connection over `method`."""
    at = wizard()
    at.text_input(key="wiz_name").input(name)
    next_step(at)
    next_step(at)
    at.radio(key="wiz_method").set_value(method)
    at.radio(key="wiz_methodology").set_value("push")
    at.text_input(key="wiz_pattern").input("calls_*.csv")
    next_step(at)
    return at


def test_a_push_connections_credentials_step_names_the_host_partners_are_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTBATCH_PUBLIC_HOST", PUBLIC_HOST)
    at = credentials_step("Acme uploads", "sftp")

    [info] = [i.value for i in at.info if "provisions the credentials" in i.value]
    assert f"our SFTP server {PUBLIC_HOST}:" in info, info
    assert "127.0.0.1" not in info


def test_an_e_mail_push_credentials_step_promises_only_the_address() -> None:
    """App audit: the step promised "a username and a password ... shown once, after Create"
    for an e-mail push, but only the address was ever shown (it is all a partner needs)."""
    at = credentials_step("Acme mail", "email")

    [info] = [i.value for i in at.info if "e-mails its files there" in i.value]
    assert "+acme-mail-…@" in info, info
    assert "password" not in " ".join(i.value for i in at.info)


def test_the_wizard_labels_a_partner_problem_as_the_partner_field() -> None:
    Services().add_partner("Acme", "vendor")
    at = wizard()
    at.text_input(key="wiz_name").input("Acme uploads")
    at.text_input(key="wiz_new_partner_name").input("Acme")
    next_step(at)

    errors = [e.value for e in at.error]
    assert any(e.startswith("Partner: a partner named") for e in errors), errors
    assert not any(e.startswith("partner:") for e in errors), errors


def test_the_users_page_labels_a_name_problem_as_the_name_field() -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/users.py").run()
    at.text_input(key="users_name").input("tester")  # the logged-in admin's own name
    at.button(key="users_add").click().run()
    assert not at.exception, at.exception

    errors = [e.value for e in at.error]
    assert errors == ["Name: a user named 'tester' already exists"], errors


def test_the_partners_page_labels_a_problem_as_its_field() -> None:
    Services().add_partner("Acme", "vendor")
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/partners.py").run()
    at.text_input(key="partners_new_name").input("Acme")
    at.button(key="partners_add").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["Name: a partner named 'Acme' already exists"]

    at.text_input(key="partners_new_name").input("Leadwave")
    at.text_input(key="partners_new_media").input("98765, abc")
    at.button(key="partners_add").click().run()
    assert [e.value for e in at.error] == ["MediaIds: 'abc' is not a MediaId (a whole number)"]
