"""The clicks and product-catalog browsers in the real app (AppTest on streamlit_app.py):
empty, on the demo data plus a clicks and a catalog connection, a filter narrowing what
they show, and the CSV download offered for exactly the filtered rows.

The data directory is built once per session and copied into each test's, as in
test_partner_ui.py."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.app_login import log_in
from helpers.typed import typed_csv
from streamlit.testing.v1 import AppTest

from app_pages import _browser
from connectbatch import demo, webapp
from connectbatch.browse import BrowseFilter
from connectbatch.models import Connection, Direction, Method, Methodology, Role
from connectbatch.services import Services
from connectbatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"
CLICKS, CATALOG = "app_pages/clicks.py", "app_pages/catalog.py"
DATA_TYPE = {CLICKS: "clicks", CATALOG: "product_catalogs"}
TIMEOUT = 30  # seconds; the first run imports pyarrow and streamlit
N = 120  # more than one page of 50


@pytest.fixture(autouse=True)
def fresh_engine() -> Iterator[None]:
    """Each test's app starts its own engine on its own data directory."""
    webapp.engine.clear()
    yield
    engine, _problem = webapp.engine()
    engine.stop()
    webapp.engine.clear()


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, plus a clicks and a product-catalog connection with one file each."""
    home = tmp_path_factory.mktemp("browse") / "home"
    services = Services(Settings(home=home))
    demo.load(services)
    clicks = {
        i: {"DeviceType": "Desktop" if i % 3 == 0 else "Mobile", "MediaId": str(100 + i % 4)}
        for i in range(N)
    }
    stock = {
        i: {"StockAvailability": "OutOfStock" if i % 4 == 0 else "InStock", "Name": f"Item {i}"}
        for i in range(N)
    }
    for name, data_type, data in (
        ("Acme clicks", "clicks", typed_csv("clicks", N, prefix="clk", overrides=clicks)),
        ("Acme catalog", "product_catalogs", typed_csv("product_catalogs", N, prefix="SKU", overrides=stock)),
    ):
        services.create_connection(
            Connection(name, data_type, Direction.INBOUND, Method.SFTP, Methodology.PUSH)
        )
        run = services.ingest_bytes(name, f"{data_type}.csv", data, "push")
        assert run.rows_accepted == N, run.reason
    return home


@pytest.fixture
def services(app_environment: None) -> Services:
    """The services of the test's data directory (CONNECTBATCH_HOME), as the app sees it."""
    return Services(Settings.from_env())


@pytest.fixture
def data_services(services: Services, data_home: Path) -> Services:
    shutil.copytree(data_home, services.settings.home)
    return services


def open_page(page: str) -> AppTest:
    at = log_in(AppTest.from_file(str(APP), default_timeout=TIMEOUT), "jane", Role.PARTNER_MANAGER).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


def downloads(at: AppTest) -> list[str]:
    return [el.proto.label for el in at.get("download_button")]


@pytest.mark.parametrize("page", [CLICKS, CATALOG])
def test_the_browsers_render_on_an_empty_data_directory(services: Services, page: str) -> None:
    at = open_page(page)

    assert not at.error
    assert at.info  # says there is nothing yet instead of empty charts
    assert not at.dataframe and not downloads(at)


@pytest.mark.parametrize("page", [CLICKS, CATALOG])
def test_the_browsers_render_with_data_and_offer_the_download(data_services: Services, page: str) -> None:
    at = open_page(page)

    assert not at.error
    title = "Clicks" if page == CLICKS else "Catalog items"
    assert at.title[0].value == title
    assert metric(at, title) == f"{N:,}"
    assert at.dataframe[0].value.shape[0] == 50  # the first page
    assert downloads(at) == [f"Download the {N:,} filtered {title.lower()} as CSV"]


def test_the_browsers_are_in_the_partner_menu_for_partner_managers_only(data_services: Services) -> None:
    at = log_in(AppTest.from_file(str(APP), default_timeout=TIMEOUT), "ann", Role.ANALYST).run()
    at.switch_page(CLICKS).run()
    assert not at.exception
    assert not at.dataframe  # "not allowed" instead of the page
    assert any("not" in e.value.lower() for e in [*at.error, *at.warning, *at.info])


def test_a_click_filter_narrows_the_counts_table_and_download(data_services: Services) -> None:
    at = open_page(CLICKS)

    at.multiselect(key="clicks_DeviceType").set_value(["Desktop"]).run()

    assert not at.exception and not at.error
    desktop = N // 3
    assert metric(at, "Clicks") == f"{desktop:,}"
    assert set(at.dataframe[0].value["DeviceType"]) == {"Desktop"}
    assert downloads(at) == [f"Download the {desktop:,} filtered clicks as CSV"]

    at.multiselect(key="clicks_MediaId").set_value([100]).run()
    both = len([i for i in range(N) if i % 3 == 0 and i % 4 == 0])
    assert metric(at, "Clicks") == f"{both:,}"
    assert set(at.dataframe[0].value["MediaId"]) == {100}


def test_a_catalog_search_and_stock_filter_narrow_the_table(data_services: Services) -> None:
    at = open_page(CATALOG)

    at.multiselect(key="product_catalogs_StockAvailability").set_value(["OutOfStock"]).run()
    at.text_input(key="product_catalogs_search").set_value("Item 1").run()

    assert not at.exception and not at.error
    expected = sorted(f"Item {i}" for i in range(N) if i % 4 == 0 and str(i).startswith("1"))
    assert metric(at, "Catalog items") == f"{len(expected):,}"
    assert sorted(at.dataframe[0].value["Name"]) == expected


def test_the_download_holds_the_filtered_rows(data_services: Services) -> None:
    flt = BrowseFilter(values={"DeviceType": ("Desktop",)})

    data = _browser.csv_bytes(data_services, "clicks", flt)

    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert len(rows) == N // 3
    assert {r["DeviceType"] for r in rows} == {"Desktop"}
    assert {r["Connection"] for r in rows} == {"Acme clicks"}
