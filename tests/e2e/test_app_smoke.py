"""The Streamlit app renders every page and every data type without an exception, and the
dry-run page shows results and file-level errors the way a user should see them.

AppTest cannot upload a file, so the dry-run display is exercised by running the page's
`_show_dry_run` in an AppTest script of its own."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch import schemas
from connectbatch.errors import ParseError
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"
PAGE = REPO / "app_pages" / "parse_preview.py"
TIMEOUT = 30  # seconds; the first run imports pyarrow and streamlit


def load_page() -> ModuleType:
    """The page as a module: its UI only renders when Streamlit runs it as __main__."""
    return importlib.import_module("app_pages.parse_preview")


def open_file_format() -> AppTest:
    at = log_in(AppTest.from_file(str(APP), default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/parse_preview.py").run()
    return at


def test_the_file_format_page_renders_without_exceptions() -> None:
    at = open_file_format()

    assert not at.exception
    assert not at.error
    assert at.title[0].value == "File format & dry run"
    assert at.selectbox(key="data_type").value == "call_conversions"


@pytest.mark.parametrize("data_type", list(schemas.REGISTRY))
def test_choosing_a_data_type_shows_its_columns(data_type: str) -> None:
    at = open_file_format()

    at.selectbox(key="data_type").set_value(data_type).run()

    assert not at.exception
    docs = at.dataframe[0].value
    assert list(docs["Column"]) == schemas.get(data_type).column_names


def _page_shows_dry_run(page_path: str, data: bytes) -> None:
    """An AppTest script: render the dry-run result for `data` as the page does."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("parse_preview_under_test", page_path)
    assert spec is not None and spec.loader is not None
    page = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(page)
    page._show_dry_run(data, "call_conversions", None, ",", "UTC")


def dry_run_app(data: bytes) -> AppTest:
    """The dry-run display as an AppTest script, logged in (the page's services need a user)."""
    return log_in(AppTest.from_function(_page_shows_dry_run, args=(str(PAGE), data), default_timeout=TIMEOUT))


def test_dry_run_shows_counts_rejects_and_accepted_rows(call_csv: Callable[..., bytes]) -> None:
    data = call_csv({}, {"CampaignId": "abc"}, {"CallSessionId": "cs-3"})
    at = dry_run_app(data).run()

    assert not at.exception
    assert [m.value for m in at.metric][:3] == ["2", "1", "1"]
    rejects, accepted = at.dataframe[0].value, at.dataframe[1].value
    assert list(rejects["Line"]) == [3]
    assert list(rejects["Column"]) == ["CampaignId"]
    assert list(accepted["Line"]) == [2, 4]


def test_unusable_file_shows_one_error_not_a_traceback() -> None:
    at = log_in(
        AppTest.from_function(
            _page_shows_dry_run,
            args=(str(PAGE), b"name,email\nAda,ada@example.com\n"),
            default_timeout=TIMEOUT,
        )
    ).run()

    assert not at.exception
    [error] = at.error
    assert "CampaignId" in error.value  # names the missing required columns
    assert not at.dataframe


def test_preview_is_capped_and_starts_with_the_line_number(call_csv: Callable[..., bytes]) -> None:
    page = load_page()
    rows = [{"CallSessionId": f"cs-{i}"} for i in range(page.PREVIEW_ROWS + 5)]
    result, _report, seconds = page.dry_run(Services(), call_csv(*rows), "call_conversions")

    preview = page.preview(result)

    assert result.rows_accepted == page.PREVIEW_ROWS + 5
    assert preview.num_rows == page.PREVIEW_ROWS
    assert preview.column_names[0] == "Line"
    assert preview.column("Line").to_pylist()[:2] == [2, 3]
    assert seconds >= 0


def test_dry_run_raises_parse_error_for_an_unusable_file() -> None:
    page = load_page()

    with pytest.raises(ParseError):
        page.dry_run(Services(), b"", "call_conversions")


def _fresh(**cells: str) -> dict[str, str]:
    """A row dated yesterday, so the EventDate window of validation accepts it."""
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return {"EventDate": yesterday.strftime("%Y-%m-%dT%H:%M:%SZ"), **cells}


def test_dry_run_shows_that_a_clean_file_would_be_loaded(call_csv: Callable[..., bytes]) -> None:
    data = call_csv(_fresh(CallSessionId="cs-1"), _fresh(CallSessionId="cs-2"))
    at = dry_run_app(data).run()

    assert not at.exception
    assert not at.error
    [verdict] = at.success
    assert "would load this batch" in verdict.value
    expectations = at.dataframe[-1].value
    assert set(expectations["Result"]) == {"✅ Passed"}


def test_dry_run_shows_the_failed_expectation_that_would_quarantine_a_file(
    call_csv: Callable[..., bytes],
) -> None:
    data = call_csv(_fresh(CallSessionId="cs-1"), _fresh(CallSessionId="cs-1"))
    at = dry_run_app(data).run()

    assert not at.exception
    assert not at.error
    assert any("would quarantine this batch" in w.value for w in at.warning)
    first = at.dataframe[-1].value.iloc[0]  # failures come first
    assert first["Result"] == "❌ Failed"
    assert first["Columns"] == "CallSessionId, VendorEventId"
    assert first["Observed"] == "2 of 2 rows (100.00 %)"
    assert "cs-1" in first["Unexpected values (sample)"]
