"""The partner managers' screens in the real app (AppTest on streamlit_app.py): the call-data
explorer and the pending actions, on an empty and on a demo data directory.

The demo is built once per session and copied into each test's data directory, so every
test starts from the same data without paying for the ingest again."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch import demo, webapp
from connectbatch.explorer import CallFilter
from connectbatch.models import Action, ActionStatus, Role
from connectbatch.services import Services
from connectbatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"
CALL_DATA, ACTIONS = "app_pages/call_data.py", "app_pages/actions.py"
TIMEOUT = 30  # seconds; the first run imports pyarrow and streamlit


@pytest.fixture(autouse=True)
def fresh_engine() -> Iterator[None]:
    """Each test's app starts its own engine on its own data directory."""
    webapp.engine.clear()
    yield
    engine, _problem = webapp.engine()
    engine.stop()
    webapp.engine.clear()


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("demo") / "home"
    demo.load(Services(Settings(home=home)))
    return home


@pytest.fixture
def services(app_environment: None, tmp_path: Path) -> Services:
    """The services of the test's data directory (CONNECTBATCH_HOME), as the app sees it."""
    return Services(Settings.from_env())


@pytest.fixture
def demo_services(services: Services, demo_home: Path) -> Services:
    shutil.copytree(demo_home, services.settings.home)
    return services


def open_page(page: str) -> AppTest:
    # jane, a partner manager: the audit trail names the logged-in user
    at = log_in(AppTest.from_file(str(APP), default_timeout=TIMEOUT), "jane", Role.PARTNER_MANAGER).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


def changeable_and_locked(services: Services) -> tuple[list[Action], list[Action]]:
    """The actions on the page's first page (50 newest), split by whether they can change."""
    page = services.find_actions(page_size=50)
    return (
        [a for a in page.actions if not page.is_locked(a)],
        [a for a in page.actions if page.is_locked(a)],
    )


@pytest.mark.parametrize("page", [CALL_DATA, ACTIONS])
def test_the_partner_pages_render_on_an_empty_data_directory(services: Services, page: str) -> None:
    at = open_page(page)

    assert not at.error
    assert at.info  # says there is nothing yet instead of showing empty charts
    assert not at.dataframe


@pytest.mark.parametrize("page", [CALL_DATA, ACTIONS])
def test_the_partner_pages_render_on_demo_data(demo_services: Services, page: str) -> None:
    at = open_page(page)

    assert not at.error
    assert at.dataframe
    if page == CALL_DATA:
        total = demo_services.call_summary(CallFilter()).kpis.calls
        assert metric(at, "Calls") == f"{total:,}"
        assert at.dataframe[0].value.shape[0] == 50  # the first page
    else:
        assert at.dataframe[0].value.shape[0] == 50
        assert demo_services.count_actions() > 50


def test_a_filter_changes_the_kpis_and_the_table(demo_services: Services) -> None:
    at = open_page(CALL_DATA)
    everything = metric(at, "Calls")

    at.multiselect(key="calls_statuses").set_value(["CANCEL"]).run()

    assert not at.exception and not at.error
    cancelled = demo_services.call_summary(CallFilter(statuses=("CANCEL",))).kpis
    assert metric(at, "Calls") == f"{cancelled.calls:,}" != everything
    assert metric(at, "Answered rate") == "0.0%"
    assert set(at.dataframe[0].value["CallStatus"]) == {"CANCEL"}

    at.pagination(key="calls_page").set_value(2).run()
    assert any(c.value.startswith("Rows 51–100 of") for c in at.caption)


def test_reversing_an_action_from_the_page_marks_it_reversed_with_the_reason(
    demo_services: Services,
) -> None:
    at = open_page(ACTIONS)
    changeable, _locked = changeable_and_locked(demo_services)
    target = next(a for a in changeable if a.status is ActionStatus.PENDING)

    at.multiselect(key="actions_selected").set_value([target.id])
    at.radio(key="actions_change").set_value("Reverse")
    at.text_input(key="actions_reason").input("Customer returned the goods")
    at.button(key="actions_apply").click().run()

    assert not at.exception and not at.error
    assert at.success[0].value.startswith("1 of 1 actions changed")
    after = demo_services.action(target.id)
    assert (after.status, after.amount) == (ActionStatus.REVERSED, Decimal("0.00"))
    last = demo_services.audit(target.id)[-1]
    assert (last.change, last.actor, last.reason) == ("reverse", "jane", "Customer returned the goods")

    at.selectbox(key="actions_detail").set_value(target.id).run()
    trail = at.dataframe[-1].value
    assert list(trail["Reason"]) == ["Customer returned the goods"]
    assert list(trail["Who"]) == ["jane"]
    # made in the app: it took effect when it was made (a file's ModificationDate may differ)
    assert ((trail["Effective"] - trail["When"]).abs() < pd.Timedelta(seconds=1)).all()


def test_a_reversal_without_a_reason_is_refused_with_a_message(demo_services: Services) -> None:
    at = open_page(ACTIONS)
    changeable, _locked = changeable_and_locked(demo_services)
    target = changeable[0]

    at.multiselect(key="actions_selected").set_value([target.id])
    at.radio(key="actions_change").set_value("Reverse")
    at.button(key="actions_apply").click().run()

    assert not at.exception
    assert at.error[0].value == "Reason: is required to reverse an action"  # as the form labels it
    assert demo_services.action(target.id) == target


def test_a_locked_action_cannot_be_modified_from_the_page(demo_services: Services) -> None:
    at = open_page(ACTIONS)
    changeable, locked = changeable_and_locked(demo_services)
    assert locked, "the demo has actions past their lock period"

    # Locked actions are read-only: not offered for a change, and said so in the detail.
    options = at.multiselect(key="actions_selected").options
    # issue 11: the picker offers more than the page shown (pending first), never a locked one
    assert len(options) >= len(changeable)
    assert not any(o.startswith(locked[0].label) for o in options)
    at.selectbox(key="actions_detail").set_value(locked[0].id).run()
    assert "read-only" in at.info[0].value

    # An action that locks while the page is open fails with a clear message.
    target = changeable[0]
    at.multiselect(key="actions_selected").set_value([target.id])
    at.number_input(key="actions_amount").set_value(99.5)
    demo_services.lock_actions(now=target.lock_at, early=True)
    at.button(key="actions_apply").click().run()

    assert not at.exception
    assert not at.success
    [error] = at.error
    assert error.value.startswith(f"{target.label} was not changed") and "locked" in error.value
    after = demo_services.action(target.id)
    assert (after.status, after.amount) == (ActionStatus.LOCKED, target.amount)


def test_the_change_pickers_offer_only_the_chosen_partners_actions(services: Services) -> None:
    """With the Partner filter on Acme, the table shows Acme's actions only, and so must the
    picker: it offered Globex's pending actions too (its wider pool ignored the filter)."""
    from helpers import call_csv

    from connectbatch.models import Connection, Direction, Method, Methodology

    for partner, prefix in (("Acme", "a"), ("Globex", "g")):
        services.add_partner(partner, "vendor")
        draft = Connection(f"{partner} calls", "call_conversions", Direction.INBOUND, Method.SFTP,
                           Methodology.PUSH, pattern="*.csv")  # fmt: skip
        services.create_connection(draft, partner=partner)
        services.ingest_bytes(f"{partner} calls", "calls.csv", call_csv(3, prefix=prefix))
    acme = next(p.id for p in services.partners() if p.name == "Acme")
    mine = {a.id for a in services.find_actions(partners=(acme,)).actions}
    assert len(mine) == 3

    at = open_page(ACTIONS)
    at.multiselect(key="actions_partners").set_value([acme]).run()

    assert not at.exception
    assert set(at.multiselect(key="actions_selected").options) == {_describe_all(services, i) for i in mine}


def _describe_all(services: Services, action_id: int) -> str:
    from app_pages.actions import _describe

    return _describe(services.action(action_id))


def test_the_page_counts_its_locked_actions_not_the_pickers_wider_choice(demo_services: Services) -> None:
    """The caption under Change actions said "-450 locked action(s) on this page": it took the
    picker's changeable actions beyond the page (issue 11's wider pool) off the page's count."""
    at = open_page(ACTIONS)
    _changeable, locked = changeable_and_locked(demo_services)
    captions = [c.value for c in at.caption if "locked action(s) on this page" in c.value]
    if locked:
        assert captions == [
            f"{len(locked)} locked action(s) on this page are read-only and cannot be selected."
        ]
    else:
        assert captions == []
