"""The Partners page in the real app (AppTest on streamlit_app.py): an analyst adds, edits and
deletes partners (refused, naming the connections, while some belong to it) and reaches each
partner's connections; every other role reads the list only. Partner text is data, shown
through escaping.visible, never markdown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch import webapp
from connectbatch.models import Connection, Direction, Method, Methodology, PartnerType, Role
from connectbatch.services import Services
from connectbatch.settings import Settings

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PAGE = "app_pages/partners.py"
TIMEOUT = 30
HOSTILE = "**Evil** [click](http://evil.example) <b>x</b>"


@pytest.fixture(autouse=True)
def fresh_engine() -> Iterator[None]:
    """Each test's app starts its own engine on its own data directory."""
    webapp.engine.clear()
    yield
    engine, _problem = webapp.engine()
    engine.stop()
    webapp.engine.clear()


@pytest.fixture
def services(app_environment: None) -> Services:
    return Services(Settings.from_env())


def open_page(name: str, role: Role) -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), name, role).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Partners"
    return at


def owned_connection(services: Services, partner: str, name: str = "Leadwave calls") -> Connection:
    draft = Connection(name=name, data_type="call_conversions", direction=Direction.INBOUND,
                       method=Method.SFTP, methodology=Methodology.PUSH)  # fmt: skip
    created, _provisioned = services.create_connection(draft, partner=partner)
    return created


def test_an_analyst_adds_edits_and_deletes_a_partner(services: Services) -> None:
    at = open_page("ann", Role.ANALYST)
    assert at.info  # no partners yet

    at.text_input(key="partners_new_name").input("Leadwave Media")
    at.selectbox(key="partners_new_type").set_value("publisher")
    at.text_input(key="partners_new_email").input("calls@leadwave.example")
    at.text_input(key="partners_new_media").input("98765, 98766")
    at.button(key="partners_add").click().run()

    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Added partner Leadwave Media" in at.success[0].value
    added = services.partner("Leadwave Media")
    assert added.type is PartnerType.PUBLISHER and added.media_ids == [98765, 98766]
    table = at.dataframe[0].value
    assert list(table["Name"]) == ["Leadwave Media"] and list(table["MediaIds"]) == ["98765, 98766"]

    prefix = f"partners_edit_{added.id}"
    at.text_input(key=f"{prefix}_media").input("12")
    at.text_input(key=f"{prefix}_email").input("")
    at.button(key=f"{prefix}_save").click().run()
    assert not at.error, [e.value for e in at.error]
    edited = services.partner(added.id)
    assert edited.media_ids == [12] and edited.return_email is None

    at.button(key=f"{prefix}_delete").click().run()
    assert "Deleted partner Leadwave Media" in at.success[0].value
    assert services.partners() == []


def test_a_partner_with_connections_is_not_deleted_and_links_to_them(services: Services) -> None:
    partner = services.add_partner("Leadwave Media", PartnerType.PUBLISHER)
    connection = owned_connection(services, "Leadwave Media")
    at = open_page("ann", Role.ANALYST)

    links = at.get("page_link")
    assert len(links) == 1 and "Leadwave calls" in links[0].proto.label
    assert links[0].proto.page == "connection"
    assert f"connection={connection.id}" in links[0].proto.query_string
    assert list(at.dataframe[0].value["Connections"]) == [1]

    at.button(key=f"partners_edit_{partner.id}_delete").click().run()

    assert "still has 1 connection(s): 'Leadwave calls'" in at.error[0].value
    assert services.partner(partner.id).name == "Leadwave Media"
    assert services.connection(connection.id).partner_id == partner.id


def test_every_role_reads_the_partners_but_only_analysts_change_them(services: Services) -> None:
    services.add_partner(HOSTILE, PartnerType.BRAND, contacts="Dana\x1b[31m")
    owned_connection(services, HOSTILE, name="Evil calls")

    for name, role in (("pam", Role.PARTNER_MANAGER), ("rita", Role.REVIEWER)):
        at = open_page(name, role)
        assert not at.error and list(at.dataframe[0].value["Name"]) == [HOSTILE]
        assert not at.main.button and not at.text_input  # nothing to change
        assert not at.get("page_link")  # the connection page is the analysts'
        assert [t.value for t in at.text if "Evil calls" in t.value]  # plain text, not markdown
        assert all("Evil" not in m.value for m in at.markdown)  # the name is never markdown
