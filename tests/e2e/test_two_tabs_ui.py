"""Two people (two browser tabs, two sessions) with the same connection's Edit form open:
a save by one must not put back what the other changed meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.app_login import log_in
from helpers.app_text import texts
from streamlit.testing.v1 import AppTest

from connectbatch import demo
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def edit_form(connection_id: int, name: str) -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), name).run()
    at.button(key=f"edit_{connection_id}").click().run()
    assert not at.exception, at.exception
    return at


def test_a_save_in_one_tab_keeps_what_another_tab_saved_meanwhile() -> None:
    services = Services()
    demo.load(services)
    pull = services.connection("Invoca daily export")
    first, second = edit_form(pull.id, "ann"), edit_form(pull.id, "bob")

    second.text_input(key=f"edit_name_{pull.id}").input("Invoca nightly export")
    second.button(key="edit_save").click().run()
    assert services.connection(pull.id).name == "Invoca nightly export"

    first.number_input(key=f"edit_lock_days_{pull.id}").set_value(45)
    first.button(key="edit_save").click().run()
    assert not first.exception
    saved = services.connection(pull.id)
    assert saved.lock_days == 45
    assert saved.name == "Invoca nightly export"  # not the name the first form was opened with
    assert "Saved Invoca nightly export: Lock period." in texts(first)
    # and the first form now shows the name as it is
    assert first.text_input(key=f"edit_name_{pull.id}").value == "Invoca nightly export"


def test_a_form_filled_before_another_tab_saved_shows_the_saved_settings_at_its_next_run() -> None:
    services = Services()
    demo.load(services)
    pull = services.connection("Invoca daily export")
    first, second = edit_form(pull.id, "ann"), edit_form(pull.id, "bob")

    second.number_input(key=f"edit_lock_days_{pull.id}").set_value(60)
    second.button(key="edit_save").click().run()

    first.run()
    assert not first.exception
    assert first.number_input(key=f"edit_lock_days_{pull.id}").value == 60
    assert "changed elsewhere" in texts(first)


def test_a_save_on_a_connection_deleted_in_another_tab_says_so_and_changes_no_other() -> None:
    """The page fell back to the first connection without a word, and the click on Save counted
    for that one's form: 'Nothing changed.' under another connection's name."""
    services = Services()
    demo.load(services)
    pull = services.connection("Invoca daily export")
    others = {c.id: c for c in services.connections() if c.id != pull.id}
    first = edit_form(pull.id, "ann")
    first.number_input(key=f"edit_lock_days_{pull.id}").set_value(45)
    services.delete_connection(pull.id)

    first.button(key="edit_save").click().run()

    assert not first.exception
    assert [w.value for w in first.warning] == [
        f"Connection {pull.id} no longer exists: deleted meanwhile, nothing typed into it was saved."
    ]
    assert "Nothing changed." not in texts(first)
    assert {c.id: c for c in services.connections()} == others
    first.button(key="detail_open_shown").click().run()  # on to the connection shown instead
    assert not first.warning and not first.exception
    assert first.get("tabs")
