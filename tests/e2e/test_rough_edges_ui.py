"""Issue 11's app rough edges in the real app (AppTest on streamlit_app.py, demo data): Run
now only where it does something (and on the connection page), the warning before a
connection's only credential is deleted, and the Pending-actions form and picker.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch import demo, webapp
from connectbatch.models import ActionStatus, Role
from connectbatch.services import Services
from connectbatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
DETAIL, ACTIONS = "app_pages/connection_detail.py", "app_pages/actions.py"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def fresh_engine() -> Iterator[None]:
    webapp.engine.clear()
    yield
    engine, _problem = webapp.engine()
    engine.stop()
    webapp.engine.clear()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("demo") / "home"
    demo.load(Services(Settings(home=home, sftp_port=0, ftp_port=0)))
    return home


@pytest.fixture
def demo_data(demo_home: Path) -> Services:
    services = Services(Settings.from_env())
    shutil.copytree(demo_home, services.settings.home)
    return Services(Settings.from_env())


def open_page(page: str | None = None, role: Role = Role.ADMIN) -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "tester", role).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button if b.key}


def test_run_now_is_offered_only_on_pulls(demo_data: Services) -> None:
    at = open_page()
    by_name = {c.name: c for c in demo_data.connections()}
    shown = keys(at)
    for name in ("Invoca daily export", "Web conversions"):
        assert f"run_{by_name[name].id}" in shown
    for name in ("Acme Call Tracking", "CallRail mailbox", "Brand returns", "Partner results pickup"):
        assert f"run_{by_name[name].id}" not in shown, name


def test_the_connection_page_has_run_now_and_the_schedule_in_words(demo_data: Services) -> None:
    pull = demo_data.connection("Invoca daily export")
    at = open_page()
    at.button(key=f"history_{pull.id}").click().run()
    assert at.title[0].value == "Invoca daily export"
    assert any("At 06:00 (UTC)" in c.value and "Next runs:" in c.value for c in at.caption)
    runs_before = len(demo_data.runs(pull.id))

    at.button(key="detail_run_now").click().run()  # sftp.invoca.example does not resolve here

    assert not at.exception
    assert any(e.value.startswith(f"Run {runs_before + 1} of Invoca daily export failed") or
               "Invoca daily export" in e.value for e in at.error)  # fmt: skip
    assert len(demo_data.runs(pull.id)) == runs_before + 1

    push = demo_data.connection("Acme Call Tracking")
    at.selectbox(key="detail_connection").set_value(push.id).run()
    assert "detail_run_now" not in keys(at)


def test_the_only_credential_is_deleted_only_after_a_warning_and_a_confirmation(demo_data: Services) -> None:
    pull = demo_data.connection("Invoca daily export")
    [only] = demo_data.credentials(pull.id)
    at = open_page()
    at.button(key=f"edit_{pull.id}").click().run()
    at.session_state["detail_tab"] = "Credentials"
    at.run()

    assert any("only credential of Invoca daily export" in w.value for w in at.warning)
    assert at.button(key=f"cred_delete_{only.id}").disabled  # until "Delete it anyway"

    at.checkbox(key=f"cred_delete_confirm_{only.id}").check().run()
    at.button(key=f"cred_delete_{only.id}").click().run()
    assert not at.exception
    assert demo_data.credentials(pull.id) == []


def test_the_change_form_is_blank_again_after_a_successful_apply(demo_data: Services) -> None:
    at = open_page(ACTIONS, Role.PARTNER_MANAGER)
    target = demo_data.find_actions(statuses=("PENDING",), page_size=1).actions[0]
    at.multiselect(key="actions_selected").set_value([target.id])
    at.radio(key="actions_change").set_value("Reverse")
    at.text_input(key="actions_reason").input("Customer returned the goods")
    at.button(key="actions_apply").click().run()

    assert not at.exception and not at.error
    assert demo_data.action(target.id).status is ActionStatus.REVERSED
    assert at.radio(key="actions_change").value == "Modify amount"
    assert at.text_input(key="actions_reason").value == ""
    assert at.multiselect(key="actions_selected").value == []


def test_the_picker_finds_a_pending_action_beyond_the_page_shown(demo_data: Services) -> None:
    at = open_page(ACTIONS, Role.PARTNER_MANAGER)
    first_page = {a.id for a in demo_data.find_actions(page_size=50).actions}
    pending = demo_data.find_actions(statuses=("PENDING",), page_size=1000)
    beyond = [a for a in pending.actions if a.id not in first_page and not pending.is_locked(a)]
    assert beyond, "the demo has more pending actions than one page"
    options = at.multiselect(key="actions_selected").options
    wanted = beyond[0]
    found = [o for o in options if o.startswith(wanted.label)]
    assert found and wanted.source_key in found[0] and f"campaign {wanted.campaign_id}" in found[0]


def test_the_wizard_describes_the_schedule_and_lists_it_in_the_create_summary(demo_data: Services) -> None:
    at = open_page()
    at.button(key="create_connection").click().run()
    at.text_input(key="wiz_name").input("Hourly export")
    at.radio(key="wiz_direction").set_value("outbound")
    for _ in range(4):
        at.button(key="wiz_next").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    at.text_input(key="wiz_schedule").input("0 6 * * mon-fri").run()

    assert any(
        "At 06:00, Monday through Friday (UTC)" in c.value and "Next runs:" in c.value for c in at.caption
    )
    review = next(d.value for d in at.dataframe if "Setting" in d.value.columns)
    rows = dict(zip(review["Setting"], review["Value"], strict=True))
    assert rows["Schedule"] == "0 6 * * mon-fri — At 06:00, Monday through Friday (UTC)"
    assert "provisioned" in rows["User"]


def test_a_busy_database_at_the_login_check_is_words_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holding the database while a logged-in person clicked: the login check
    (`session_alive`) raised DatabaseBusyError outside every page's guard, and Streamlit showed
    its traceback (file paths, code)."""
    from connectbatch.store.db import DatabaseBusyError

    at = log_in(AppTest.from_file(APP, default_timeout=60)).run()
    assert not at.exception, at.exception

    def busy(*_args: object) -> bool:
        raise DatabaseBusyError("the database is in use by process 4242 (connectbatch serve)")

    monkeypatch.setattr(Services, "session_alive", busy)
    monkeypatch.setattr(Services, "current_user", busy)
    at.run()
    assert not at.exception, at.exception
    assert any("cannot read its database right now" in e.value for e in at.error), [e.value for e in at.error]


def test_a_setting_that_cannot_be_used_is_named_when_the_app_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app did not check its settings as every command and `serve` do (check_usable): a
    secret key that is no Fernet key started the app, and the first credential saved failed
    with a cryptography error. Now the first page says which setting is wrong, no traceback."""
    with monkeypatch.context() as m:  # undone before `fresh_engine` starts one to stop it
        m.setenv("CONNECTBATCH_SECRET_KEY", "not-a-fernet-key")
        at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert "cannot start" in error and "SECRET\\_KEY is not a valid Fernet key" in error
    assert not at.text_input  # no login form on a store it could not use


def test_the_actions_page_names_the_currency_a_row_gave(demo_data: Services) -> None:
    """A brand's JPY order of 12000.00 was listed as a bare 12000.00, read as dollars."""
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = "CampaignId,ActionTrackerId,EventDate,OrderId,Amount,CurrencyCode"
    data = f"{header}\r\n1234,20002,{when},JP-1,12000.00,JPY\r\n"
    run = demo_data.ingest_bytes("Web conversions", "Conversions_2026_jp.csv", data.encode())
    assert run.actions_created == 1, run.reason

    at = open_page(ACTIONS, Role.PARTNER_MANAGER)
    table = at.dataframe[0].value
    assert table.loc[table["Source key"] == "JP-1", "Currency"].tolist() == ["JPY"]
    options = at.multiselect(key="actions_selected").options
    assert any(o.startswith("A-") and "12000.00 JPY" in o for o in options), options[:3]
