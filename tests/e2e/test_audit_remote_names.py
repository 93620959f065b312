"""File names a partner's own server lists are partner text: *Test connection* (the wizard's
and the Credentials tab's) shows them as every other table of partner text does, with control
characters and bidi overrides made visible, so "invoice<RLO>vsc.exe" cannot read as
"invoiceexe.csv" to the analyst deciding whether the pattern takes the right files
(an attacker audit, 2026-12-07)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers.app_login import log_in
from helpers.ports import free_port
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import CredentialInput, Services
from connectbatch.transfer.base import RemoteFile

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
SPOOFED = "invoice\u202evsc.exe"  # reads "invoiceexe.csv" where the override is applied
FORGED = "calls.csv\nfake.csv"

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


@pytest.fixture
def hostile_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The partner's server lists two hostile names (no server needed: the listing is theirs)."""
    when = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    listed = [RemoteFile(SPOOFED, "/out/" + SPOOFED, 10, when), RemoteFile(FORGED, "/out/x", 20, when)]
    monkeypatch.setattr(Services, "test_connection", lambda *_args, **_kw: listed)


def listed_names(at: AppTest) -> list[str]:
    [table] = [d.value for d in at.dataframe if "File" in d.value.columns and "Size" in d.value.columns]
    return list(table["File"])


def assert_shown_escaped(at: AppTest) -> None:
    assert not at.exception, at.exception
    names = listed_names(at)
    assert names == ["invoice\\u202evsc.exe", "calls.csv\\nfake.csv"], names


@pytest.mark.usefixtures("hostile_listing")
def test_the_wizards_test_connection_shows_listed_names_with_controls_visible() -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key="create_connection").click().run()
    at.text_input(key="wiz_name").input("Partner pull")
    at.radio(key="wiz_direction").set_value("inbound")
    at.button(key="wiz_next").click().run()
    at.radio(key="wiz_data_type").set_value("call_conversions")
    at.button(key="wiz_next").click().run()
    at.radio(key="wiz_method").set_value("sftp")
    at.radio(key="wiz_methodology").set_value("pull").run()
    at.text_input(key="wiz_folder").input("/out")
    at.text_input(key="wiz_host").input("127.0.0.1")
    at.number_input(key="wiz_port").set_value(free_port())
    at.button(key="wiz_next").click().run()
    at.text_input(key="wiz_username").input("acme")
    at.text_input(key="wiz_password").input("s3cret-password")
    at.button(key="wiz_test").click().run()
    assert_shown_escaped(at)


@pytest.mark.usefixtures("hostile_listing")
def test_the_credentials_tabs_test_connection_shows_listed_names_with_controls_visible() -> None:
    created, _ = Services().create_connection(
        Connection("Partner pull", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
                   host="127.0.0.1", port=free_port(), folder="/out", pattern="*"),
        CredentialInput(name="Their SFTP", username="acme", password="not-a-real-password"),
    )  # fmt: skip
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"edit_{created.id}").click().run()
    at.session_state["detail_tab"] = "Credentials"
    at.run()
    at.text_input(key=f"reconnect_username_{created.id}").input("acme")
    at.text_input(key=f"reconnect_password_{created.id}").input("another-password")
    at.button(key="reconnect_test").click().run()
    assert_shown_escaped(at)
