"""Credentials reuse in the app (issue 11; seeds: "Either select existing credentials, or
create new credentials"): the wizard's credentials step offers the partner's compatible
credential sets (name, username, which connections use them) beside "Create new", creates
the connection with the chosen set without showing any secret, and the connection page's
credentials say whom the set is shared with."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.app_login import log_in
from helpers.app_text import texts
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.specs import SftpSpec

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT = 60


pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


@pytest.fixture
def services() -> Services:
    """Acme with an SFTP push login and an SFTP pull login; Rival with an SFTP push login."""
    svc = Services()
    svc.add_partner("Acme", "brand")
    svc.add_partner("Rival", "brand")
    push = Connection("Calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                      pattern="calls_*.csv")  # fmt: skip
    svc.create_connection(push, partner="Acme")
    pull = Connection("Acme pull", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
                      host="127.0.0.1", port=2222, folder="/out", transfer=SftpSpec())  # fmt: skip
    svc.create_connection(pull, CredentialInput("Acme SFTP", "acme-user", "s3cret-remote"), partner="Acme")
    svc.create_connection(
        Connection("Rival calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH),
        partner="Rival",
    )
    return svc


def next_step(at: AppTest) -> None:
    at.button(key="wiz_next").click().run()
    assert not at.exception, at.exception


def wizard_to_credentials(name: str, partner: str, methodology: str, pattern: str) -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key="create_connection").click().run()
    at.text_input(key="wiz_name").input(name)
    at.selectbox(key="wiz_partner").set_value(partner)
    next_step(at)
    next_step(at)  # call conversions
    at.radio(key="wiz_method").set_value("sftp")
    at.radio(key="wiz_methodology").set_value(methodology).run()
    at.text_input(key="wiz_pattern").input(pattern)
    if methodology == "pull":
        at.text_input(key="wiz_folder").input("/out")
        at.text_input(key="wiz_host").input("127.0.0.1")
        at.number_input(key="wiz_port").set_value(2222)
    next_step(at)
    return at


def test_the_wizard_reuses_the_partners_push_login_and_shows_no_secret(services: Services) -> None:
    [calls_login] = services.credentials("Calls")
    at = wizard_to_credentials("Daily", "Acme", "push", "daily_*.csv")
    choice = at.radio(key="wiz_cred_choice")
    assert choice.value == "Create new credentials"
    assert list(choice.options) == ["Create new credentials", "Use existing credentials"]
    choice.set_value("Use existing credentials").run()
    offered = at.selectbox(key="wiz_reuse_credential")
    assert offered.options == [
        f"Calls login · {calls_login.username} · used by Calls"
    ]  # not Rival's, not the pull
    next_step(at)
    assert not any(t.key == "wiz_cred_name" for t in at.text_input)  # a reused set keeps its name
    at.button(key="wiz_create").click().run()

    assert not at.exception, at.exception
    assert at.title[0].value == "Connections"  # no "shown once" dialog: nothing new to show
    assert not at.code
    [shared] = services.credentials("Daily")
    assert shared.id == calls_login.id and shared.used_by == ("Calls", "Daily")

    daily = services.connection("Daily")
    at.button(key=f"edit_{daily.id}").click().run()
    at.session_state["detail_tab"] = "Credentials"
    at.run()
    assert not at.exception, at.exception
    assert "Shared with Calls" in texts(at)
    at.button(key=f"cred_detach_{shared.id}").click().run()  # Daily stops using it; Calls keeps it
    assert not at.exception, at.exception
    assert services.credentials("Daily") == []
    assert services.credentials("Calls")[0].used_by == ("Calls",)


def test_the_wizard_reuses_a_pull_login_without_asking_for_it_again(services: Services) -> None:
    [remote] = services.credentials("Acme pull")
    at = wizard_to_credentials("Acme pull 2", "Acme", "pull", "leads_*.csv")
    at.radio(key="wiz_cred_choice").set_value("Use existing credentials").run()
    assert at.selectbox(key="wiz_reuse_credential").options == ["Acme SFTP · acme-user · used by Acme pull"]
    assert not any(t.key == "wiz_password" for t in at.text_input)  # nothing to type, nothing shown
    next_step(at)
    at.button(key="wiz_create").click().run()
    assert not at.exception, at.exception
    assert [c.id for c in services.credentials("Acme pull 2")] == [remote.id]


def test_create_new_stays_the_default_and_a_new_partner_has_nothing_to_offer(services: Services) -> None:
    at = wizard_to_credentials("Fresh", "Acme", "push", "fresh_*.csv")
    next_step(at)  # "Create new credentials" left as it is
    at.button(key="wiz_create").click().run()
    assert not at.exception, at.exception
    assert len([c.value for c in at.code]) >= 4  # the new login, shown once
    assert services.credentials("Fresh")[0].used_by == ("Fresh",)

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key="create_connection").click().run()
    at.text_input(key="wiz_name").input("Newcomer")
    next_step(at)
    next_step(at)
    at.radio(key="wiz_method").set_value("sftp")
    at.radio(key="wiz_methodology").set_value("push").run()
    next_step(at)
    assert not any(r.key == "wiz_cred_choice" for r in at.radio)
