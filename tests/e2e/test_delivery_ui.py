"""The Delivery calendar page and the delivery-alert banner (issue 12, part 5), in AppTest:
expected vs received files per connection per day, a partner filter, the learned cadence an
analyst may apply, and open alerts shown (escaped) on the connections list, the connection
page and the calendar. Other roles are refused the page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology, Role
from connectbatch.services import Services
from connectbatch.store import delivery as delivery_store

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60


pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def connection(services: Services, name: str, partner: str, **attrs: object) -> Connection:
    draft = Connection(name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                       **attrs)  # type: ignore[arg-type]  # fmt: skip
    created, _ = services.create_connection(draft, partner=partner)
    return created


def test_the_calendar_shows_expected_vs_received_and_the_banner_the_open_alerts() -> None:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = Clock(today)
    services = Services(clock=clock)
    services.add_partner("Acme", "vendor")
    services.add_partner("Other", "brand")
    acme = connection(services, "Acme calls", "Acme", expect="daily by 06:00", expect_grace_minutes=60)
    connection(services, "Other calls", "Other")
    for back, hour in ((4, 5), (3, 5), (1, 9)):  # day -2 has no file; day -1's came at 09:00
        clock.now = today - dt.timedelta(days=back) + dt.timedelta(hours=hour)
        services.ingest_bytes("Acme calls", f"calls_{back}.csv", call_csv(20, prefix=f"b{back}"))
    clock.now = today - dt.timedelta(days=3, hours=-7)
    services.ingest_bytes("Acme calls", "again.csv", call_csv(20, prefix="again"))  # a second file
    with services.db.transaction() as con:
        delivery_store.raise_alert(con, acme.id, "volume_drift", "file evil\x1b[31m.csv has 2 rows",
                                   today, "volume:99")  # fmt: skip

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "ann", Role.ANALYST).run()
    assert not at.exception, at.exception
    [banner] = [w.value for w in at.warning if "Volume drift" in w.value]
    # The Markdown that shows `evil\x1b[31m.csv` as typed (escaping.markdown_text).
    assert "Acme calls" in banner and r"evil\\x1b\[31m.csv" in banner and "\x1b" not in banner

    at.switch_page("app_pages/delivery.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Delivery calendar"
    assert any("Volume drift" in w.value for w in at.warning)
    grid = at.dataframe[0].value
    assert list(grid["Connection"]) == ["Acme calls", "Other calls"]
    row = grid.iloc[0]

    def day(back: int) -> str:
        return f"{today - dt.timedelta(days=back):%a %m-%d}"

    assert row[day(4)] == "✓ received"
    assert row[day(3)] == "✓ received +1"  # the second file that day nobody expected
    assert row[day(2)] == "✗ missing"
    assert row[day(1)] == "⏰ late"
    assert row[f"{today + dt.timedelta(days=3):%a %m-%d}"] == "○ expected"
    assert grid.iloc[1][day(4)] == ""  # Other expects nothing and received nothing

    at.multiselect(key="delivery_partners").select(services.partner("Other").id).run()
    assert list(at.dataframe[0].value["Connection"]) == ["Other calls"]


def test_an_analyst_applies_the_learned_cadence() -> None:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = Clock(today)
    services = Services(clock=clock)
    services.add_partner("Acme", "vendor")
    connection(services, "Acme calls", "Acme")
    for back in range(1, 6):
        clock.now = today - dt.timedelta(days=back, hours=-7)
        services.ingest_bytes("Acme calls", f"calls_{back}.csv", call_csv(20, prefix=f"d{back}"))

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "ann", Role.ANALYST)
    at.switch_page("app_pages/delivery.py").run()
    assert not at.exception, at.exception
    [table] = [d.value for d in at.dataframe if "Learned" in d.value.columns]
    assert table.iloc[0]["Learned"] == "daily by 07:00 (50%)" and table.iloc[0]["Expected"] == ""

    at.button(key="delivery_apply").click().run()

    assert not at.exception, at.exception
    assert services.connection("Acme calls").expect == "daily by 07:00"


def test_other_roles_are_refused_the_calendar() -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "rita", Role.REVIEWER).run()
    at.switch_page("app_pages/delivery.py").run()
    assert not at.exception
    assert "may not use this page" in at.error[0].value
    assert not at.dataframe


def test_an_analyst_sets_the_expected_delivery_on_the_page() -> None:
    services = Services()
    services.add_partner("Acme", "vendor")
    connection(services, "Acme calls", "Acme")
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "ann", Role.ANALYST)
    at.switch_page("app_pages/delivery.py").run()

    at.text_input(key="delivery_edit_expect").input("hourly")
    save = next(b for b in at.button if b.label == "Save")
    save.click().run()
    assert any("is not a cadence" in e.value for e in at.error)
    assert services.connection("Acme calls").expect is None

    at.text_input(key="delivery_edit_expect").input("Weekdays by 09:00")
    at.number_input(key="delivery_edit_tolerance").set_value(30)
    at.text_input(key="delivery_edit_owner").input("me@ours.example")
    next(b for b in at.button if b.label == "Save").click().run()

    assert not at.exception, at.exception
    saved = services.connection("Acme calls")
    assert (saved.expect, saved.volume_tolerance, saved.owner_email) == (
        "weekdays by 09:00",
        30,
        "me@ours.example",
    )
