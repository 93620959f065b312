"""The Triage page as a reviewer uses it: what locks soon, by partner and time left, and a held
batch released with one click; the Validation page's queue shows each held batch's deadline."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # `import helpers` (tests/helpers/)
    sys.path.insert(0, str(TESTS))

from helpers import call_csv  # noqa: E402
from helpers.app_login import log_in  # noqa: E402

from connectbatch import webapp  # noqa: E402
from connectbatch.models import Connection, Direction, Method, Methodology, PartnerType, Role  # noqa: E402
from connectbatch.services import Services  # noqa: E402
from connectbatch.settings import Settings  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT = 30
HELD = {2: {"CallerId": "1.55512E+10"}}


@pytest.fixture(autouse=True)
def fresh_engine(app_environment: None) -> Iterator[None]:
    webapp.engine.clear()
    yield
    engine, _ = webapp.engine()
    engine.stop()
    webapp.engine.clear()


def services() -> Services:
    return Services(Settings.from_env())


def held_batch(svc: Services, name: str, partner: str, lock_days: int) -> int:
    """A quarantined batch of a new connection of `partner`; returns its run id."""
    if partner not in {p.name for p in svc.partners()}:
        svc.add_partner(partner, PartnerType.VENDOR)
    draft = Connection(name=name, data_type="call_conversions", direction=Direction.INBOUND,
                       method=Method.SFTP, methodology=Methodology.PUSH, lock_days=lock_days)  # fmt: skip
    svc.create_connection(draft, partner=partner)
    run = svc.ingest_bytes(name, "held.csv", call_csv(20, overrides=HELD))
    assert run.review == "quarantined"
    return run.id


def open_triage() -> AppTest:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "Ada", Role.REVIEWER).run()
    at.switch_page("app_pages/triage.py").run()
    assert not at.exception
    return at


def test_the_page_says_when_nothing_needs_a_person() -> None:
    at = open_triage()

    assert at.title[0].value == "Triage"
    assert not at.error
    assert "Nothing that needs a person locks within 7 days" in at.success[0].value


def test_held_batches_are_grouped_by_partner_and_one_click_releases_one() -> None:
    svc = services()
    later = held_batch(svc, "Alpha calls", "Alpha", lock_days=5)
    sooner = held_batch(svc, "Beta <b>calls</b>", "Beta $x$", lock_days=3)

    at = open_triage()
    assert not at.error
    assert [h.value for h in at.subheader] == ["Beta \\$x\\$ · 1", "Alpha · 1"]  # partner text, literal
    assert at.metric[0].value == "2"
    shown = [m.value for m in at.markdown]
    assert any("Beta \\<b\\>calls\\</b\\>" in m for m in shown)
    assert any(c.value.startswith("locks ") for c in at.caption)

    at.button(key=f"triage_release_{sooner}").click().run()

    assert not at.exception and not at.error
    assert f"Run {sooner} released by Ada: 20 rows loaded" in at.success[0].value
    assert [h.value for h in at.subheader] == ["Alpha · 1"]
    released = services().run(sooner)
    assert released.review == "released" and "Ada" in (released.review_note or "")
    assert "triage" in (released.review_note or "")
    assert services().run(later).review == "quarantined"

    at.button(key=f"triage_discard_{later}").click().run()
    assert f"Run {later} discarded by Ada" in at.success[0].value
    assert not at.subheader


def test_the_validation_queue_shows_a_held_batch_lock_deadline() -> None:
    run_id = held_batch(services(), "Alpha calls", "Alpha", lock_days=5)

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "Ada", Role.REVIEWER).run()
    at.switch_page("app_pages/validation.py").run()

    assert not at.exception
    queue = next(f.value for f in at.dataframe if "Lock deadline" in f.value.columns)
    row = queue[queue["Run"] == run_id].iloc[0]
    assert row["Time left"].startswith("3 d ")  # 5 days after an event 1.4 days old
    assert row["Lock deadline"] is not None


def test_a_partner_manager_may_not_open_the_triage() -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "pam", Role.PARTNER_MANAGER).run()
    at.switch_page("app_pages/triage.py").run()

    assert not at.exception
    assert "Not allowed: pam (Partner manager) may not use this page" in at.error[0].value
    assert not any(b.key and b.key.startswith("triage_") for b in at.button)


def test_a_batch_decided_meanwhile_says_it_was_not_discarded_on_either_page() -> None:
    """Defect: the error read "was not discardd" ("discard" + "d") on the Validation page."""
    run_id = held_batch(services(), "Alpha calls", "Alpha", lock_days=5)
    triage_at = open_triage()
    review = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "Ada", Role.REVIEWER).run()
    review.switch_page("app_pages/validation.py").run()
    review.selectbox(key="validation_run").set_value(run_id).run()
    review.text_area(key="review_note").set_value("drop it")
    review.button(key="review_discard").click().run()

    services().discard(run_id, "someone else was quicker")  # another reviewer, meanwhile
    review.button(key="review_confirm").click().run()
    triage_at.button(key=f"triage_discard_{run_id}").click().run()

    for at in (review, triage_at):
        assert not at.exception
        assert at.error[0].value.startswith(f"Run {run_id} was not discarded: ")


def test_a_run_failed_by_a_refused_file_asks_for_a_resend_not_a_retry() -> None:
    """A retry of a file refused for its content fails the same way: the page's link says
    the partner resends it."""
    svc = services()
    svc.add_partner("Alpha", PartnerType.VENDOR)
    draft = Connection(name="Alpha calls", data_type="call_conversions", direction=Direction.INBOUND,
                       method=Method.SFTP, methodology=Methodology.PUSH, lock_days=3)  # fmt: skip
    svc.create_connection(draft, partner="Alpha")
    svc.ingest_bytes("Alpha calls", "good.csv", call_csv(5))  # actions that lock within the window
    svc.ingest_bytes("Alpha calls", "bad.csv", b"not,the,header\n1,2,3\n")

    at = open_triage()
    labels = [link.proto.label for link in at.get("page_link")]
    assert "Open the connection (the partner resends)" in labels, labels
    assert "Open the connection (retry)" not in labels
