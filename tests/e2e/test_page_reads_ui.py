"""How much the slow screens read per page view (issue 13: a page ready in <= 1.5 s on 1M call
rows). No timings here (bench/bench_pages.py measures them): these count the reads a page
makes, which is what made the screens slow, in AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology, Role
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def connection(services: Services, name: str, partner: str) -> Connection:
    draft = Connection(name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    created, _ = services.create_connection(draft, partner=partner)
    return created


def test_the_delivery_calendar_reads_each_connections_status_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The expectations table and the learned-cadence picker used to read every connection's
    delivery status each (a scan of its recent files per read): twice the reads."""
    services = Services()
    services.add_partner("Acme", "vendor")
    for i, name in enumerate(("Acme calls", "Acme more calls", "Acme late calls")):
        connection(services, name, "Acme")
        services.ingest_bytes(name, "calls.csv", call_csv(5, prefix=f"p{i}"))
    reads: list[int | str] = []
    original = Services.delivery_status

    def counted(self: Services, name_or_id: str | int) -> object:
        reads.append(name_or_id)
        return original(self, name_or_id)

    monkeypatch.setattr(Services, "delivery_status", counted)
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "ann", Role.ANALYST)
    at.switch_page("app_pages/delivery.py").run()

    assert not at.exception, at.exception
    [table] = [d.value for d in at.dataframe if "Learned" in d.value.columns]
    assert len(table) == 3
    assert sorted(map(str, reads)) == sorted({str(r) for r in reads}) and len(reads) == 3


def calls_metric(at: AppTest) -> str:
    return str(next(m.value for m in at.metric if m.label == "Calls"))


def test_call_data_shows_a_new_ingest_and_a_renamed_partner_at_once() -> None:
    """The explorer's filter options and summaries are cached across sessions; the cache key
    moves with the data, so a file loaded (or a partner renamed) meanwhile shows on the next
    page view, in this session and in a new one."""
    services = Services()
    services.add_partner("Acme", "vendor")
    connection(services, "Acme calls", "Acme")
    services.ingest_bytes("Acme calls", "one.csv", call_csv(4, prefix="one"))
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "pam", Role.PARTNER_MANAGER)
    at.switch_page("app_pages/call_data.py").run()
    assert not at.exception, at.exception
    assert calls_metric(at) == "4"
    before = services.call_data_version()

    services.ingest_bytes("Acme calls", "two.csv", call_csv(3, prefix="two"))
    assert services.call_data_version() != before
    at.run()
    assert calls_metric(at) == "7"

    renamed = services.call_data_version()
    services.update_partner("Acme", name="Acme Renamed")
    assert services.call_data_version() != renamed
    other = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "pam", Role.PARTNER_MANAGER)
    other.switch_page("app_pages/call_data.py").run()
    assert calls_metric(other) == "7"
    assert other.multiselect(key="calls_partners").options == ["Acme Renamed"]


def test_validation_reads_a_runs_details_once_until_the_run_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's files, expectations, rejects and results files are read once per state of the
    run and shared by the sessions; releasing the run changes it, so they are read again."""
    services = Services()
    services.add_partner("Acme", "vendor")
    connection(services, "Acme calls", "Acme")
    twice = call_csv(5, prefix="twice", overrides={1: {"CallSessionId": "twice-0000"}})
    held = services.ingest_bytes("Acme calls", "calls_twice.csv", twice)
    assert held.review == "quarantined"
    reads: list[int] = []
    original = Services.run_files

    def counted(self: Services, run_id: int) -> object:
        reads.append(run_id)
        return original(self, run_id)

    monkeypatch.setattr(Services, "run_files", counted)

    def view() -> AppTest:
        at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "rita", Role.REVIEWER)
        at.switch_page("app_pages/validation.py").run()
        assert not at.exception, at.exception
        return at

    at = view()
    view()
    assert reads == [held.id]
    assert any(b.key == "review_release" for b in at.button)

    at.text_area(key="review_note").set_value("checked")
    at.button(key="review_release").click().run()
    at.button(key="review_confirm").click().run()
    assert not at.exception, at.exception
    assert services.run(held.id).review == "released"
    assert reads == [held.id, held.id]
    assert not any(b.key == "review_release" for b in at.button)
