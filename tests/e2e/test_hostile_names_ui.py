"""A connection's, a partner's and a credential's names are typed by people and copied from
partners' own words: every screen shows them as they are. A name written in Markdown, LaTeX or
a Streamlit directive must not turn bold, into a link, into a formula or red; an emoji stays."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from helpers.ports import free_port
from streamlit.testing.v1 import AppTest

from connectbatch.escaping import markdown_text, visible
from connectbatch.models import Connection, Direction, Method, Methodology, Role
from connectbatch.services import CredentialInput, Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
HOSTILE = "**B** $x^2$ [l](http://e.example) :red[r] 🎉"
# How Markdown shows it as typed: its marks escaped, an invisible word joiner after the colons
# Streamlit acts on (a directive, a link; see escaping.markdown_text and its browser test).
LITERAL = "\\*\\*B\\*\\* \\$x^2\\$ \\[l\\](http:\u2060//e.example) :\u2060red\\[r\\] 🎉"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def closed_port() -> int:
    return free_port()


def rendered(at: AppTest) -> list[str]:
    """Every piece of the page Streamlit renders as Markdown."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success")
    found = [e.value for kind in kinds for e in getattr(at, kind)]
    return found + [e.label for e in at.expander] + [e.label for e in at.status]


def assert_literal(at: AppTest, *, seen: int = 1) -> None:
    assert not at.exception, at.exception
    shown = [t for t in rendered(at) if "x^2" in t]
    assert len(shown) >= seen, rendered(at)
    for text in shown:
        assert LITERAL in text, text


def test_a_hostile_connection_name_shows_as_typed_on_the_list_and_after_run_now() -> None:
    services = Services()
    created, _ = services.create_connection(
        Connection(HOSTILE, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
                   host="127.0.0.1", port=closed_port(), folder="/out", pattern="*.csv"),
        CredentialInput(name=HOSTILE, username="acme", password="not-a-real-password"),
    )  # fmt: skip
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ANALYST).run()
    assert_literal(at)  # the list's row
    at.button(key=f"run_{created.id}").click().run()
    assert_literal(at, seen=3)  # the run's status box and its failure name the connection too


def test_the_connection_page_shows_a_hostile_name_as_typed_on_every_tab() -> None:
    services = Services()
    services.add_partner(HOSTILE, "vendor")
    created, _ = services.create_connection(
        Connection(HOSTILE, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   pattern="*.csv"),
        partner=HOSTILE,
    )  # fmt: skip
    services.ingest_bytes(HOSTILE, "calls.csv", call_csv(3))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ANALYST).run()
    at.button(key=f"edit_{created.id}").click().run()
    assert_literal(at, seen=2)  # the title, the partner
    for tab in ("Credentials", "Delete"):
        at.session_state["detail_tab"] = tab
        at.run()
        assert_literal(at, seen=3)  # ... and the credential's name, the delete warning


def test_the_wizard_shows_a_hostile_name_as_typed_in_the_credentials_box_and_after_create() -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ANALYST).run()
    at.button(key="create_connection").click().run()
    at.text_input(key="wiz_name").input(HOSTILE)
    for _ in range(4):
        at.button(key="wiz_next").click().run()
        assert not at.exception, at.exception
    at.button(key="wiz_create").click().run()
    assert_literal(at)  # the provisioned credentials box names the connection
    at.button(key="provisioned_done").click().run()
    assert_literal(at, seen=3)  # the list's row, its partner and "Connection ... created."


def test_the_validation_page_shows_a_hostile_connection_name_as_typed() -> None:
    services = Services()
    services.create_connection(
        Connection(HOSTILE, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   pattern="*.csv"),
    )  # fmt: skip
    services.ingest_bytes(HOSTILE, "calls.csv", call_csv(3))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.REVIEWER).run()
    at.switch_page("app_pages/validation.py").run()
    assert_literal(at)  # "Run N: <name>"


def test_two_email_push_names_alike_get_two_addresses_no_one_can_guess() -> None:
    """E-mail push connections are told apart by their address. It was inbox+<name>@...:
    "Acme Calls" and "acme-calls" both made inbox+acme-calls@ (the wizard refused the second),
    and anyone who guessed it from a partner's name could mail files in as pending actions.
    Now each new connection's address ends with a random part: the wizard creates both, and
    neither is the name's own address."""

    services = Services()
    services.add_partner("Acme", "vendor")
    services.add_partner("Globex", "vendor")
    first, _ = services.create_connection(
        Connection("Acme Calls", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                   pattern="*.csv"), partner="Acme",
    )  # fmt: skip
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ANALYST).run()
    at.button(key="create_connection").click().run()
    at.text_input(key="wiz_name").input("acme-calls")
    at.button(key="wiz_next").click().run()
    at.button(key="wiz_next").click().run()
    at.radio(key="wiz_method").set_value("email").run()
    at.radio(key="wiz_methodology").set_value("push").run()
    assert any("inbox+acme-calls-…@" in i.value for i in at.info), at.info
    for _ in range(2):
        at.button(key="wiz_next").click().run()
    at.button(key="wiz_create").click().run()

    assert not at.exception, at.exception
    assert not at.error, at.error
    second = services.connection("acme-calls")
    addresses = {services.inbound_address(c) for c in (first, second)}
    assert len(addresses) == 2 and all(
        re.fullmatch(r"inbox\+acme-calls-[a-z0-9]{8}@connectbatch\.local", a) for a in addresses
    ), addresses

    other, _ = services.create_connection(
        Connection("Globex calls", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                   pattern="*.csv"), partner="Globex",
    )  # fmt: skip
    given = services.inbound_address(other)
    # A rename keeps the address the partner was given (connections.mail_tag), also for a
    # name with no letter.
    for name in ("ACME calls!", "🎉 ✓"):
        renamed = services.update_connection(other.id, name=name)
        assert services.inbound_address(renamed) == given


@pytest.mark.parametrize("name", ["Acme\ncalls", "Acme \u202ecalls\u202c", "Acme \x1b[31mcalls"])
def test_a_name_with_control_characters_is_deleted_by_typing_it_as_shown(name: str) -> None:
    """Such a name is shown with its control characters escaped (`Acme\\ncalls`); the Delete
    tab wanted the raw name typed, which no one can type: the connection could not be deleted."""
    services = Services()
    services.add_partner("Acme", "vendor")
    created, _ = services.create_connection(
        Connection(
            name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*.csv"
        ),
        partner="Acme",
    )
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ANALYST).run()
    at.button(key=f"edit_{created.id}").click().run()
    at.session_state["detail_tab"] = "Delete"
    at.run()
    shown = visible(name)
    assert any(markdown_text(name) in w.value for w in at.warning)  # reads as `shown`
    at.text_input(key=f"delete_confirm_{created.id}").input(shown).run()
    assert not at.button(key="delete_connection").disabled
    at.button(key="delete_connection").click().run()
    assert not at.exception
    assert all(c.id != created.id for c in services.connections())


def test_a_bidi_override_in_a_connection_name_is_shown_not_applied_in_pickers() -> None:
    """U+202E reverses the text after it: "Bidi \u202egpj.exe" reads "Bidi exe.jpg", and in a
    picker's label it reversed the date and verdict too. Pickers show it made visible, as
    every list does (escaping.visible)."""
    name = "Bidi \u202egpj.exe"
    services = Services()
    created, _ = services.create_connection(
        Connection(
            name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*.csv"
        )
    )
    services.ingest_bytes(name, "calls.csv", call_csv(2, overrides={1: {"CallSessionId": "cs-0000"}}))  # held
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ADMIN).run()
    at.switch_page("app_pages/validation.py").run()
    assert not at.exception, at.exception
    labels = [o for box in at.selectbox for o in box.options]
    assert any(visible(name) in o for o in labels) and not any("\u202e" in o for o in labels), labels
    at.switch_page("app_pages/actions.py").run()
    assert not at.exception, at.exception
    assert visible(name) in at.selectbox(key="actions_connection").options
    at.switch_page("app_pages/connections.py").run()
    at.button(key=f"edit_{created.id}").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="detail_connection").options == [visible(name)]
