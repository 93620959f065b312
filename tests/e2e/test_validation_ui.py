"""The Validation page as a data-quality reviewer uses it: the review queue, a run's
expectations and rejects, release and discard of quarantined batches.

The demo data directory is built once per module and copied into each test's own
CONNECTBATCH_HOME; the app's engine (st.cache_resource) is cleared around every test so the
page reads that copy."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # `import helpers` (tests/helpers/)
    sys.path.insert(0, str(TESTS))

from helpers import call_csv  # noqa: E402
from helpers.app_login import log_in  # noqa: E402

from connectbatch import demo, webapp  # noqa: E402
from connectbatch.models import Role  # noqa: E402
from connectbatch.pipeline import validation  # noqa: E402
from connectbatch.services import Services  # noqa: E402
from connectbatch.settings import Settings  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT = 30


@dataclass(frozen=True)
class DemoHome:
    path: Path
    resent: int  # the demo's quarantined run: CallSessionIds already loaded
    repeated: int  # a second quarantined run: a CallSessionId twice in one file
    with_rejects: int  # a loaded run whose parser rejected 12 rows


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> DemoHome:
    validation.gx_context()  # pay GX's import once, here
    home = tmp_path_factory.mktemp("demo") / "home"
    services = Services(Settings(home=home))
    summary = demo.load(services)
    twice = call_csv(5, prefix="twice", overrides={1: {"CallSessionId": "twice-0000"}})
    repeated = services.ingest_bytes("Acme Call Tracking", "calls_twice.csv", twice, "push")
    [resent] = [r for r in services.quarantined() if r.id != repeated.id]
    assert repeated.review == "quarantined"
    return DemoHome(home, resent.id, repeated.id, with_rejects=summary.runs[0])


@pytest.fixture(autouse=True)
def fresh_engine(app_environment: None) -> Iterator[None]:
    """Each test's app starts on its own CONNECTBATCH_HOME."""
    webapp.engine.clear()
    yield
    engine, _ = webapp.engine()
    engine.stop()
    webapp.engine.clear()


@pytest.fixture
def with_demo(demo_home: DemoHome) -> DemoHome:
    shutil.copytree(demo_home.path, os.environ["CONNECTBATCH_HOME"])
    return demo_home


def services() -> Services:
    """The test's data directory, as the app sees it."""
    return Services(Settings.from_env())


def open_validation() -> AppTest:
    # Ada, a reviewer: releases and discards are kept with the logged-in user's name
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "Ada", Role.REVIEWER).run()
    at.switch_page("app_pages/validation.py").run()
    assert not at.exception
    return at


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with the columns {columns}")


def has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def choose(at: AppTest, run_id: int) -> AppTest:
    at.selectbox(key="validation_run").set_value(run_id).run()
    assert not at.exception
    return at


def decide(at: AppTest, action: str, note: str = "checked with the partner") -> AppTest:
    at.text_area(key="review_note").set_value(note)
    at.button(key=f"review_{action}").click().run()
    at.button(key="review_confirm").click().run()
    assert not at.exception
    return at


def test_the_page_renders_on_an_empty_data_directory() -> None:
    at = open_validation()

    assert not at.error
    assert at.title[0].value == "Validation"
    assert "No runs yet" in at.info[0].value


def test_quarantined_runs_are_listed_first_with_their_failed_expectation(with_demo: DemoHome) -> None:
    at = open_validation()

    assert not at.error
    queue = table_with(at, "Run", "Review", "Validation")
    assert list(queue["Review"][:2]) == ["Quarantined", "Quarantined"]
    assert set(queue["Run"][:2]) == {with_demo.resent, with_demo.repeated}
    assert set(queue["Review"][2:]) == {""}
    assert at.selectbox(key="validation_run").value == queue["Run"][0]

    choose(at, with_demo.resent)
    outcomes = table_with(at, "Result", "Expectation", "Observed")
    first = outcomes.iloc[0]
    assert first["Result"] == "❌ Failed"
    assert first["Severity"] == "Critical"
    assert "already loaded" in first["Expectation"]
    assert first["Observed"] == "298 of 300 rows (99.33 %)"
    assert first["Unexpected values (sample)"].startswith("cr-a-000000, cr-a-000001")
    assert first["Lines"].endswith(", … (first 20 of 298 rows)")  # where to look in the file
    assert has_button(at, "review_release") and has_button(at, "review_discard")


def test_releasing_a_quarantined_run_with_a_note_loads_its_new_records(with_demo: DemoHome) -> None:
    at = choose(open_validation(), with_demo.resent)

    decide(at, "release", note="resend agreed with CallRail")

    assert not at.error
    [done] = at.success
    assert f"Run {with_demo.resent} released by Ada" in done.value
    run = services().run(with_demo.resent)
    assert run.review == "released"
    assert "resend agreed with CallRail" in (run.review_note or "")
    # 298 of the 300 records were already loaded: releasing never doubles them
    assert (run.actions_created, run.rows_duplicate) == (2, 298)
    assert f"{run.actions_created:,} pending actions created" in done.value
    queue = table_with(at, "Run", "Review")
    assert queue.set_index("Run").loc[with_demo.resent, "Review"] == "Released"
    assert not has_button(at, "review_release")  # nothing left to decide on this run


def test_discarding_another_quarantined_run_marks_it_discarded_and_loads_nothing(
    with_demo: DemoHome,
) -> None:
    actions_before = services().count_actions()
    at = choose(open_validation(), with_demo.repeated)

    decide(at, "discard", note="duplicate ids: partner re-exports")

    assert not at.error
    assert f"Run {with_demo.repeated} discarded by Ada" in at.success[0].value
    run = services().run(with_demo.repeated)
    assert run.review == "discarded"
    assert services().count_actions() == actions_before
    assert services().run(with_demo.resent).review == "quarantined"  # the other one waits


def test_a_decision_needs_a_note(with_demo: DemoHome) -> None:
    at = choose(open_validation(), with_demo.resent)

    at.button(key="review_release").click().run()

    assert not at.exception
    assert any("Write a note" in w.value for w in at.warning)
    assert not has_button(at, "review_confirm")
    assert services().run(with_demo.resent).review == "quarantined"


def test_a_note_written_for_one_run_is_not_carried_to_another(with_demo: DemoHome) -> None:
    """A reviewer's note for a re-send, left unsaved, must not become the note of the next
    run they open (a Release there would have kept it with that run)."""
    at = choose(open_validation(), with_demo.resent)
    at.text_area(key="review_note").set_value("partner confirmed this is a resend: discard")
    at.run()
    choose(at, with_demo.repeated)
    assert at.text_area(key="review_note").value == ""
    at.button(key="review_release").click().run()
    assert not has_button(at, "review_confirm")  # no note: nothing to confirm
    assert services().run(with_demo.repeated).review == "quarantined"


def test_a_failed_decision_is_an_error_message_not_a_traceback(with_demo: DemoHome) -> None:
    at = choose(open_validation(), with_demo.resent)
    at.text_area(key="review_note").set_value("looks fine")
    at.button(key="review_release").click().run()
    services().discard(with_demo.resent, "someone else was quicker", "Bob")  # meanwhile

    at.button(key="review_confirm").click().run()

    assert not at.exception
    [error] = at.error
    assert "not quarantined" in error.value
    assert services().run(with_demo.resent).review == "discarded"


def test_the_rejects_table_shows_line_column_value_and_reason(with_demo: DemoHome) -> None:
    at = choose(open_validation(), with_demo.with_rejects)

    assert not at.error
    rejects = table_with(at, "Line", "Column", "Value", "Reason")
    assert list(rejects.columns) == ["Line", "Key", "Column", "Value", "Reason"]
    assert len(rejects) == 12
    assert list(rejects["Line"]) == sorted(rejects["Line"])
    bad_campaign = rejects[rejects["Column"] == "CampaignId"].iloc[0]
    assert bad_campaign["Value"] == "abc"
    assert "whole number" in bad_campaign["Reason"]
    downloads = [el.proto.label for el in at.get("download_button")]
    assert "Download 12 rejects (CSV)" in downloads
    assert any(label.endswith(".results.csv") for label in downloads)


def test_a_rejected_value_that_reorders_text_is_shown_escaped_on_both_reject_tables(
    with_demo: DemoHome,
) -> None:
    """A value holding a bidi override (U+202E ... U+202C) showed as the reverse of what it
    is ('RTL' read 'LTR'): the reviewer read a value the partner never sent. Every reject
    table shows partner text as `visible` does (the calls table did already)."""
    spoof = "\u202eRTL\u202c"
    data = call_csv(20, prefix="bidi", overrides={0: {"CampaignId": spoof}})
    run = services().ingest_bytes("Acme Call Tracking", "calls_bidi.csv", data, "push")
    at = choose(open_validation(), run.id)
    rejects = table_with(at, "Line", "Column", "Value", "Reason")
    [value] = list(rejects[rejects["Column"] == "CampaignId"]["Value"])
    assert value == "\\u202eRTL\\u202c"
    assert not any("\u202e" in str(cell) for cell in rejects.to_numpy().ravel())

    # The connection's History tab (an analyst's page) shows the same rejects.
    connection = services().connection("Acme Call Tracking")
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "Ann", Role.ANALYST).run()
    at.switch_page("app_pages/connection_detail.py")
    at.session_state["connection_id"] = connection.id
    at.session_state["detail_tab"] = "History"
    at.run()
    assert not at.exception
    assert f"Run {run.id}" in [h.value for h in at.subheader]  # the newest run is open
    history = table_with(at, "File", "Line", "Value", "Reason")
    [value] = list(history[history["Column"] == "CampaignId"]["Value"])
    assert value == "\\u202eRTL\\u202c"
