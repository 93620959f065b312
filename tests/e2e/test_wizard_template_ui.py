"""The wizard's data-type step gives every user the data type's template CSV, and links to the
File format page only for a user whose role may open it (an analyst was sent to a page that
answered "Not allowed": the page is a reviewer's, app_pages/_menu.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Role

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
WIZARD = "app_pages/connection_wizard.py"
FILE_FORMAT = "file-format"  # app_pages/parse_preview.py's address (app_pages/_menu.py)
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def data_type_step(name: str, role: Role, data_type: str = "call_conversions") -> AppTest:
    """The wizard at step 2 (data type) for a user `name` with `role`, `data_type` chosen."""
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), name, role).run()
    at.switch_page(WIZARD).run()
    at.text_input(key="wiz_name").input("Template check")
    at.button(key="wiz_next").click().run()
    at.radio(key="wiz_data_type").set_value(data_type).run()
    assert not at.exception, at.exception
    assert "Step 2" in at.get("progress")[0].proto.text
    return at


def links_to(at: AppTest, url_path: str) -> list[Any]:
    """The page's links to the screen at `url_path` (AppTest has no page_link accessor)."""
    return [e.proto for e in at.get("page_link") if e.proto.page == url_path]


def template(at: AppTest) -> Any:
    [button] = [e for e in at.get("download_button") if e.proto.id.endswith("wiz_template_download")]
    return button.proto


def test_an_analyst_gets_the_template_csv_and_no_link_to_a_page_they_may_not_open() -> None:
    at = data_type_step("analyst", Role.ANALYST, "conversions")

    assert links_to(at, FILE_FORMAT) == []
    button = template(at)
    assert button.label == "Download the template CSV"
    assert button.url.endswith(".csv")  # mime text/csv: the data type's template_csv()


def test_a_user_who_may_open_the_file_format_page_also_gets_the_link() -> None:
    at = data_type_step("admin", Role.ADMIN)

    assert [link.label for link in links_to(at, FILE_FORMAT)] == ["See the file format and try a file"]
    assert template(at).label == "Download the template CSV"
