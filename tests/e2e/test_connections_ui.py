"""The Connections screens as an analyst uses them: the list with statuses, filters and Run
now, the Connector wizard for an SFTP pull, an FTP push and an Email push (provisioned
credentials shown once), and a connection's Edit, History, Credentials and Delete tabs.

Each test gets its own data directory (tests/e2e/conftest.py) and its own engine: the cached
engine of `connectbatch.webapp` is stopped and cleared around every test.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
from pathlib import Path

import pandas as pd
import pytest
from helpers.app_login import log_in
from helpers.app_text import texts
from helpers.ports import free_port
from streamlit.testing.v1 import AppTest

from connectbatch import demo
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.store import credentials as credential_store
from connectbatch.store import host_keys as host_key_store

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
LIST = "app_pages/connections.py"
WIZARD = "app_pages/connection_wizard.py"
DETAIL = "app_pages/connection_detail.py"
TIMEOUT = 60  # seconds; the first run imports pyarrow and streamlit, a drill-down loads GX reports


pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo data directory per module (loading it runs validation: seconds)."""
    home = tmp_path_factory.mktemp("demo") / "home"
    demo.load(Services(Settings(home=home, sftp_port=0, ftp_port=0)))
    return home


@pytest.fixture
def services() -> Services:
    """The services of this test's data dir (CONNECTBATCH_HOME, set by conftest)."""
    return Services()


@pytest.fixture
def demo_data(demo_template: Path, services: Services) -> Services:
    shutil.copytree(demo_template, services.settings.home)
    return services


def closed_port() -> int:
    return free_port()


def open_page(page: str = LIST) -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    if page != LIST:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def credentials_tab(connection_id: int) -> AppTest:
    """The connection's page on its Credentials tab, opened from the list's Edit."""
    at = open_page()
    at.button(key=f"edit_{connection_id}").click().run()
    at.session_state["detail_tab"] = "Credentials"
    return at.run()


def table(at: AppTest, column: str, nth: int = 0) -> pd.DataFrame:
    """The nth table on the page that has `column` (AppTest does not expose table keys)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) > nth, f"no table with a {column!r} column"
    return found[nth]


def next_step(at: AppTest) -> None:
    at.button(key="wiz_next").click().run()
    assert not at.exception, at.exception


def start_wizard(name: str, direction: str = "inbound", data_type: str = "call_conversions") -> AppTest:
    at = open_page()
    at.button(key="create_connection").click().run()
    assert at.title[0].value == "Create connection"
    at.text_input(key="wiz_name").input(name)
    at.radio(key="wiz_direction").set_value(direction)
    next_step(at)
    at.radio(key="wiz_data_type").set_value(data_type)
    next_step(at)
    return at


def pull_connection(services: Services, name: str, port: int) -> Connection:
    created, _ = services.create_connection(
        Connection(
            name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
            host="127.0.0.1", port=port, folder="/outgoing", pattern="calls_*.csv",
        ),
        CredentialInput(name="Their SFTP", username="acme", password="not-a-real-password"),
    )  # fmt: skip
    return created


# --------------------------------------------------------------------------- rendering


def test_every_connection_page_renders_on_an_empty_data_dir() -> None:
    at = open_page()
    assert at.title[0].value == "Connections"
    assert "No connections yet" in texts(at)

    at.switch_page(WIZARD).run()
    assert not at.exception
    assert at.text_input(key="wiz_name").value == ""

    at.switch_page(DETAIL).run()
    assert not at.exception
    assert "No connections yet" in texts(at)


def test_every_connection_page_and_tab_renders_on_the_demo(demo_data: Services) -> None:
    at = open_page()
    shown = texts(at)
    for c in demo_data.connections():
        assert f"**{c.name}**" in shown
    assert ":red-badge[Failed]" in shown and ":green-badge[Completed]" in shown
    assert ":gray-badge[None]" in shown

    for c in demo_data.connections():
        at.button(key=f"edit_{c.id}").click().run()
        assert at.title[0].value == c.name
        for tab in ("Edit", "History", "Credentials", "Mapping", "Delete"):
            at.session_state["detail_tab"] = tab
            at.run()
            assert not at.exception, (c.name, tab, at.exception)
            assert not at.error or tab == "History", (c.name, tab, [e.value for e in at.error])
        at.switch_page(LIST).run()

    at.switch_page(WIZARD).run()
    at.text_input(key="wiz_name").input("Demo walk-through")
    for _ in range(4):  # every step, with its defaults
        next_step(at)
        assert not at.error, [e.value for e in at.error]
    assert at.button(key="wiz_create")


# --------------------------------------------------------------------------- the wizard


def test_wizard_creates_an_sftp_pull_and_test_connection_shows_the_error(services: Services) -> None:
    port = closed_port()
    at = start_wizard("Invoca pull")
    at.radio(key="wiz_method").set_value("sftp")
    at.radio(key="wiz_methodology").set_value("pull").run()
    at.text_input(key="wiz_pattern").input("Calls_202?_*.csv")
    at.text_area(key="wiz_pattern_samples").input("Calls_2025_03.csv\ncalls_2025_03.csv").run()
    preview = table(at, "Matches")
    matched = dict(zip(preview["File name"], preview["Matches"], strict=True))
    assert matched["Calls_2025_03.csv"] and not matched["calls_2025_03.csv"]

    at.text_input(key="wiz_folder").input("exports/daily")
    at.text_input(key="wiz_host").input("127.0.0.1")
    at.number_input(key="wiz_port").set_value(port)
    next_step(at)
    assert "Folder: must be an absolute path" in texts(at)  # still on step 3, told why

    at.text_input(key="wiz_folder").input("/exports/daily")
    next_step(at)
    at.text_input(key="wiz_username").input("acme")
    at.text_input(key="wiz_password").input("s3cret-password")
    at.button(key="wiz_test").click().run()
    assert not at.exception
    [failure] = [e.value for e in at.error]
    assert failure.startswith("Test connection failed:") and str(port) in failure

    next_step(at)
    assert at.text_input(key="wiz_cred_name").value == "Invoca pull login"
    at.text_input(key="wiz_return_email").input("ops@acme.example")
    at.text_input(key="wiz_schedule").input("0 6 * * *")
    at.button(key="wiz_create").click().run()

    assert not at.exception
    assert at.title[0].value == "Connections"
    assert "Connection Invoca pull created." in texts(at)
    created = services.connection("Invoca pull")
    assert (created.host, created.port, created.folder) == ("127.0.0.1", port, "/exports/daily")
    assert created.pattern == "Calls_202?_*.csv" and created.schedule == "0 6 * * *"
    [credential] = services.credentials(created.id)
    assert (credential.username, credential.kind, credential.has_secret) == ("acme", "remote", True)


def test_wizard_creates_an_ftp_push_and_shows_the_credentials_once(services: Services) -> None:
    at = start_wizard("Brand returns", data_type="action_modifications")
    at.radio(key="wiz_method").set_value("ftp")
    at.radio(key="wiz_methodology").set_value("push")
    at.text_input(key="wiz_pattern").input("returns_*.csv")
    next_step(at)
    assert "provisions the credentials" in texts(at)
    next_step(at)
    at.text_input(key="wiz_cred_name").input("Brand FTP login")
    at.button(key="wiz_create").click().run()

    assert not at.exception
    shown = [c.value for c in at.code]
    username, password = shown[2], shown[3]  # host, port, username, password, then "Copy all"
    assert username.startswith("cb_brand_returns")
    assert len(password) >= 16
    assert f"Password: {password}" in shown[-1]

    at.button(key="provisioned_done").click().run()
    assert not at.exception
    assert at.title[0].value == "Connections"
    assert not at.code
    assert password not in repr([at.session_state[k] for k in at.session_state])
    [credential] = services.credentials("Brand returns")
    assert (credential.name, credential.kind) == ("Brand FTP login", "provisioned")
    assert credential.username == username


def test_leaving_the_page_with_the_credentials_open_never_shows_them_again(services: Services) -> None:
    """The browser's Back (or a menu link) while the dialog is up, then the wizard again: the
    password was shown a second time, on every visit, until Done or Copy all."""
    at = start_wizard("Brand uploads", data_type="action_modifications")
    at.radio(key="wiz_method").set_value("sftp")
    at.radio(key="wiz_methodology").set_value("push")
    next_step(at)
    next_step(at)
    at.button(key="wiz_create").click().run()
    assert not at.exception
    password = [c.value for c in at.code][3]

    at.run()  # the same page again (a rerun): the dialog stays up
    assert password in [c.value for c in at.code]

    at.switch_page("app_pages/connections.py").run()
    at.switch_page("app_pages/connection_wizard.py").run()
    assert not at.exception
    assert password not in [c.value for c in at.code]
    assert password not in repr([at.session_state[k] for k in at.session_state])


def test_wizard_creates_an_email_push_with_its_own_address(services: Services) -> None:
    at = start_wizard("CallRail mailbox")
    at.radio(key="wiz_method").set_value("email")
    at.radio(key="wiz_methodology").set_value("push")
    at.text_input(key="wiz_pattern").input("CallRail_*.csv")
    next_step(at)
    next_step(at)
    at.button(key="wiz_create").click().run()

    assert not at.exception
    shown = [c.value for c in at.code]
    assert re.fullmatch(r"inbox\+callrail-mailbox-[a-z0-9]{8}@connectbatch\.local", shown[0]), shown
    at.button(key="provisioned_done").click().run()
    created = services.connection("CallRail mailbox")
    assert created.method is Method.EMAIL
    assert "**CallRail mailbox**" in texts(at)

    # The address is no secret: the connection's Credentials tab keeps showing it.
    at.button(key=f"edit_{created.id}").click().run()
    at.session_state["detail_tab"] = "Credentials"
    at.run()
    assert not at.exception
    assert shown[0] in [c.value for c in at.code]


def test_wizard_refuses_a_missing_name_and_a_taken_one(services: Services) -> None:
    pull_connection(services, "Taken", closed_port())
    at = open_page(WIZARD)
    next_step(at)
    assert "Name: is required" in texts(at)
    at.text_input(key="wiz_name").input("Taken")
    next_step(at)
    assert "a connection named 'Taken' already exists" in texts(at)
    at.text_input(key="wiz_name").input("Fresh")
    next_step(at)
    assert at.radio(key="wiz_data_type")
    at.button(key="wiz_back").click().run()
    assert at.text_input(key="wiz_name").value == "Fresh"  # kept across steps


# --------------------------------------------------------------------------- the list


def test_run_now_on_a_pull_to_a_closed_port_shows_a_failed_run(services: Services) -> None:
    port = closed_port()
    created = pull_connection(services, "Partner SFTP", port)
    at = open_page()

    at.button(key=f"run_{created.id}").click().run()

    assert not at.exception
    [failure] = [e.value for e in at.error]
    assert failure.startswith("Run 1 of Partner SFTP failed:")
    assert f"127.0.0.1:{port}" in failure
    assert ":red-badge[Failed]" in texts(at)
    [run] = services.runs(created.id)
    assert run.status == "Failed"


def test_run_now_on_a_push_connection_explains_files_arrive_by_themselves(demo_data: Services) -> None:
    # Issue 11: a push row no longer offers Run now; a request that still names one (an old
    # session's) is explained and starts nothing.
    push = demo_data.connection("Acme Call Tracking")
    runs_before = len(demo_data.runs(push.id))
    at = open_page()
    assert f"run_{push.id}" not in {b.key for b in at.button}
    at.session_state["run_request"] = push.id
    at.run()
    assert not at.exception
    assert "files arrive by themselves" in texts(at)
    assert len(demo_data.runs(push.id)) == runs_before  # nothing was started


def test_filters_and_search_narrow_the_list(demo_data: Services) -> None:
    at = open_page()
    at.multiselect(key="filter_method").set_value(["email"]).run()
    shown = texts(at)
    assert "**CallRail mailbox**" in shown and "**Web conversions**" in shown
    assert "**Acme Call Tracking**" not in shown
    at.multiselect(key="filter_method").set_value([])
    at.multiselect(key="filter_status").set_value(["Failed"]).run()
    shown = texts(at)
    assert "**Acme Call Tracking**" in shown and "**Brand returns**" not in shown
    at.multiselect(key="filter_status").set_value([])
    at.text_input(key="search").input("invoca").run()
    assert "1 of 6 connections" in texts(at)


# --------------------------------------------------------------------------- the detail page


def test_history_drill_down_shows_rejects_validation_and_results(demo_data: Services) -> None:
    acme = demo_data.connection("Acme Call Tracking")
    first = min(r.id for r in demo_data.runs(acme.id))
    at = open_page()
    at.button(key=f"history_{acme.id}").click().run()
    assert at.title[0].value == "Acme Call Tracking"

    runs = table(at, "Duplicates")
    wanted = {"Start", "End", "Status", "Files", "Rows accepted", "Rejected", "Duplicates", "Reason"}
    assert wanted <= set(runs)
    assert "Failed" in set(runs["Status"])
    at.selectbox(key=f"history_run_{acme.id}").set_value(first).run()
    assert not at.exception

    rejects = table(at, "Line")
    assert len(rejects) == 12
    assert list(rejects.columns) == ["File", "Line", "Key", "Column", "Value", "Reason"]
    assert "abc" in set(rejects["Value"])
    assert at.get("download_button")  # rejects CSV and the results files
    outcomes = table(at, "Severity")
    # the same wording as the Validation screen (connectbatch.pipeline.review)
    assert {"Result", "Severity", "Expectation", "Observed", "Unexpected values (sample)"} <= set(outcomes)
    assert any("rows unexpected" in o or "rows rejected" in o for o in outcomes["Observed"])


def test_edit_saves_a_change_and_shows_a_bad_value(demo_data: Services) -> None:
    pull = demo_data.connection("Invoca daily export")
    at = open_page()
    at.button(key=f"edit_{pull.id}").click().run()
    at.number_input(key=f"edit_lock_days_{pull.id}").set_value(45)
    at.button(key="edit_save").click().run()
    assert not at.exception
    assert "Saved Invoca daily export: Lock period." in texts(at)
    assert demo_data.connection(pull.id).lock_days == 45

    at.text_input(key=f"edit_schedule_{pull.id}").input("every morning")
    at.button(key="edit_save").click().run()
    assert not at.exception
    assert any(e.value.startswith("Schedule: 'every morning' is not a cron expression") for e in at.error)


def test_reconnect_a_push_connection_shows_the_new_login_once_and_keeps_the_old(
    demo_data: Services,
) -> None:
    push = demo_data.connection("Brand returns")
    [old] = demo_data.credentials(push.id)
    at = credentials_tab(push.id)
    at.text_input(key=f"reconnect_name_{push.id}").input("Second login")
    at.button(key="reconnect_save").click().run()

    assert not at.exception
    password = [c.value for c in at.code][3]
    at.button(key="provisioned_done").click().run()
    assert password not in repr([at.session_state[k] for k in at.session_state])
    new, secondary = demo_data.credentials(push.id)
    assert (new.name, new.is_main, secondary.id, secondary.is_main) == ("Second login", True, old.id, False)

    at.session_state["detail_tab"] = "Credentials"
    at.run()
    at.button(key=f"cred_main_{old.id}").click().run()
    assert demo_data.credentials(push.id)[0].id == old.id
    at.button(key=f"cred_delete_{new.id}").click().run()
    assert [c.id for c in demo_data.credentials(push.id)] == [old.id]


def test_reconnect_of_a_pull_makes_the_new_login_main_and_pulls_with_it(services: Services) -> None:
    """The seed's Re-connect: "adding your actual credentials and refreshing the connection".
    Saving new details of a pull starts a pull with them (here it fails: nothing listens)."""
    port = closed_port()
    created = pull_connection(services, "Partner SFTP", port)
    [old] = services.credentials(created.id)
    at = credentials_tab(created.id)
    at.text_input(key=f"reconnect_name_{created.id}").input("Rotated login")
    at.text_input(key=f"reconnect_username_{created.id}").input("acme")
    at.text_input(key=f"reconnect_password_{created.id}").input("the-new-password")
    at.button(key="reconnect_save").click().run()

    assert not at.exception
    new, secondary = services.credentials(created.id)
    assert (new.name, new.is_main, secondary.id, secondary.is_main) == ("Rotated login", True, old.id, False)
    [run] = services.runs(created.id)  # the refresh: one pull, with the new login
    assert run.status == "Failed" and f"127.0.0.1:{port}" in (run.reason or "")
    assert any("A pull with it has started." in s.value for s in at.success)


def test_a_changed_sftp_host_key_shows_both_fingerprints_and_is_accepted_only_when_typed(
    demo_data: Services,
) -> None:
    pull = demo_data.connection("Invoca daily export")
    [credential] = demo_data.credentials(pull.id)

    def key(seed: int) -> tuple[str, str]:
        blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes([seed] * 32)
        line = "ssh-ed25519 " + base64.b64encode(blob).decode()
        fingerprint = demo_data.host_key_fingerprint(line)
        assert fingerprint is not None
        return line, fingerprint

    (pinned, old), (presented, new) = key(1), key(2)
    changed = "the host key of sftp.invoca.example has changed"
    with demo_data.db.transaction() as con:  # what a run that met a different key leaves behind
        host_key_store.pin_first(con, pull.host, pull.port, pinned, old)
        host_key_store.record_presented(con, pull.host, pull.port, presented, new)
        credential_store.set_status(con, credential.id, "Error", changed)
    at = open_page()
    at.button(key=f"edit_{pull.id}").click().run()
    at.session_state["detail_tab"] = "Credentials"
    at.run()

    assert ":red-badge[Error]" in texts(at)
    assert changed in [e.value for e in at.error]
    assert f"`{old}`" in texts(at) and any(new in e.value for e in at.error)
    at.text_input(key="accept_host_key_fingerprint").set_value(old).run()
    at.button(key="accept_host_key").click().run()
    assert demo_data.host_key(pull.id).host_key == pinned  # type: ignore[union-attr]  # refused
    at.text_input(key="accept_host_key_fingerprint").set_value(new).run()
    at.button(key="accept_host_key").click().run()

    assert not at.exception
    accepted = demo_data.host_key(pull.id)
    assert accepted is not None and (accepted.host_key, accepted.presented_key) == (presented, None)
    [credential] = demo_data.credentials(pull.id)
    assert (credential.status, credential.last_error) == ("Active", None)


def test_delete_needs_the_name_typed_and_returns_to_the_list(demo_data: Services) -> None:
    target = demo_data.connection("Web conversions")
    at = open_page()
    at.button(key=f"edit_{target.id}").click().run()
    at.session_state["detail_tab"] = "Delete"
    at.run()
    assert at.button(key="delete_connection").disabled
    at.text_input(key=f"delete_confirm_{target.id}").input("Web conversions").run()
    at.button(key="delete_connection").click().run()

    assert not at.exception
    assert at.title[0].value == "Connections"
    assert "Deleted the connection Web conversions." in texts(at)
    assert "Web conversions" not in [c.name for c in demo_data.connections()]


def test_export_now_on_an_outbound_connections_page(demo_data: Services) -> None:
    """Issue 11: the page names the partner; Export now writes the partner's new rows once."""
    pickup = demo_data.connection("Partner results pickup")
    at = open_page()
    assert "Partner: Acme Insurance" in texts(at)
    at.button(key=f"edit_{pickup.id}").click().run()
    assert at.title[0].value == pickup.name and "Partner: Acme Insurance" in texts(at)

    at.button(key="export_now").click().run()
    assert not at.exception, at.exception
    [done] = demo_data.exports(pickup.id)
    assert done.rows > 0 and f"Exported {done.rows:,} rows" in texts(at)
    assert "Last export" in texts(at)

    at.button(key="export_now").click().run()
    assert "Nothing new to export" in texts(at)
    assert len(demo_data.exports(pickup.id)) == 1
