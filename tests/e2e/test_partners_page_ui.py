"""The Partners page in the real app (AppTest on streamlit_app.py): an analyst adds, edits and
deletes partners (refused, naming the connections, while some belong to it) and reaches each
partner's connections; every other role reads the list only. Partner text is data, shown
through escaping.visible, never markdown."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch import demo, webapp
from connectbatch.explorer import CallFilter
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


# ------------------------------------------------------- partner names on the other screens


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("demo") / "home"
    demo.load(Services(Settings(home=home)))
    return home


@pytest.fixture
def demo_services(services: Services, demo_home: Path) -> Services:
    shutil.copytree(demo_home, services.settings.home)
    return services


def test_the_explorer_names_media_partners_and_filters_by_partner(demo_services: Services) -> None:
    at = open_other("app_pages/call_data.py", Role.PARTNER_MANAGER)
    media = at.multiselect(key="calls_media")
    assert "Leadwave Media (98765)" in media.options and "98801" in media.options
    assert set(at.dataframe[0].value["Partner"]) <= {p for p, _kind, _e, _c in demo.DEMO_PARTNERS}

    leadwave = demo_services.partner("Leadwave Media").id
    at.multiselect(key="calls_partners").set_value([leadwave]).run()

    assert not at.exception and not at.error
    expected = demo_services.call_summary(CallFilter(partners=(leadwave,))).kpis.calls
    assert 0 < expected < demo_services.call_summary(CallFilter()).kpis.calls
    assert next(m.value for m in at.metric if m.label == "Calls") == f"{expected:,}"
    assert set(at.dataframe[0].value["Partner"]) == {"Leadwave Media"}


def test_pending_actions_and_validation_filter_by_partner(demo_services: Services) -> None:
    acme = demo_services.partner("Acme Insurance").id
    at = open_other("app_pages/actions.py", Role.PARTNER_MANAGER)
    assert "Partner" in at.dataframe[0].value.columns
    at.multiselect(key="actions_partners").set_value([acme]).run()
    assert not at.exception and not at.error
    assert set(at.dataframe[0].value["Partner"]) == {"Acme Insurance"}

    at = open_other("app_pages/validation.py", Role.REVIEWER)
    at.multiselect(key="validation_partners").set_value([acme]).run()
    assert not at.exception and not at.error
    assert set(at.dataframe[0].value["Partner"]) == {"Acme Insurance"}


def open_other(page: str, role: Role) -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=60), role.value, role).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
