"""The data browsers (clicks, product catalogs) on a real DuckDB file: filters narrow the
counts, the page and the CSV download alike; partner text comes out escaped."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from helpers.typed import typed_csv

from connectbatch import browse
from connectbatch.browse import BrowseFilter
from connectbatch.escaping import csv_cell
from connectbatch.models import Role
from connectbatch.services import InvalidInputError, PermissionDeniedError, Services

N = 20


def clicks(services: Services, make_connection) -> None:
    """20 clicks from two connections: campaigns 1..2, media 7 / 8, devices and countries mixed."""
    make_connection("Clicks A", "clicks")
    make_connection("Clicks B", "clicks")
    overrides = {
        i: {
            "CampaignId": str(1 + i % 2), "MediaId": "7" if i < 15 else "8",
            "DeviceType": "Mobile" if i % 4 else "Desktop", "Country": "DE" if i % 5 == 0 else "US",
            "LandingPageUrl": f"https://shop.example/p/{i}",
        }
        for i in range(N)
    }  # fmt: skip
    services.ingest_bytes("Clicks A", "clicks_a.csv", typed_csv("clicks", N, prefix="a", overrides=overrides))
    services.ingest_bytes("Clicks B", "clicks_b.csv", typed_csv("clicks", 5, prefix="b"))


def catalog(services: Services, make_connection) -> None:
    make_connection("Shop", "product_catalogs")
    overrides = {
        i: {
            "Name": f"Widget {i}", "CurrentPrice": f"{10 + i}.00",
            "Category": "Home > Widgets" if i % 2 else "Garden",
            "StockAvailability": "InStock" if i < 12 else "OutOfStock",
            "Manufacturer": "Acme" if i % 3 else "Globex",
        }
        for i in range(N)
    }  # fmt: skip
    overrides[0]["Name"] = '=HYPERLINK("http://evil.example","x")'
    overrides[1]["Name"] = "Widget\x1b[31m red\u202e"
    data = typed_csv("product_catalogs", N, prefix="SKU", overrides=overrides)
    run = services.ingest_bytes("Shop", "catalog.csv", data)
    assert run.rows_accepted == N, run.reason


def read_csv(services: Services, data_type: str, flt: BrowseFilter, tmp_path: Path) -> list[dict[str, str]]:
    target = tmp_path / f"{data_type}.csv"
    written = services.export_browse_csv(data_type, flt, target)
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert written == len(rows)
    return rows


def test_click_filters_narrow_counts_page_and_download(services: Services, make_connection, tmp_path) -> None:
    clicks(services, make_connection)

    options = services.browse_options("clicks")
    assert [name for _id, name in options.connections] == ["Clicks A", "Clicks B"]  # busiest first
    assert options.values["MediaId"][0] == 7 and set(options.values["MediaId"]) == {7, 8, 98765}
    assert options.values["DeviceType"] == ["Desktop", "Mobile"]
    assert options.first_day is not None and options.last_day is not None

    everything = services.browse_summary("clicks", BrowseFilter())
    assert everything.rows == N + 5
    assert dict((k.label, v) for k, v in everything.kpis)["Clicks"] == N + 5

    a_id = options.connections[0][0]
    flt = BrowseFilter(
        connections=(a_id,), values={"MediaId": (7,), "DeviceType": ("Mobile",), "Country": ("US",)}
    )
    expected = [f"a-{i:04d}" for i in range(15) if i % 4 and i % 5]
    summary = services.browse_summary("clicks", flt)
    assert summary.rows == len(expected)
    kpis = {k.label: v for k, v in summary.kpis}
    assert (kpis["Campaigns"], kpis["Media partners"], kpis["Countries"]) == (2, 1, 1)
    assert kpis["Mobile share"] == pytest.approx(1.0)
    assert sum(summary.per_day.column("rows").to_pylist()) == len(expected)
    assert summary.top.column("value").to_pylist() == ["7"]

    rows = services.browse_rows("clicks", flt, page_size=1000)
    assert sorted(rows.column("ClickId").to_pylist()) == expected
    assert set(rows.column("Connection").to_pylist()) == {"Clicks A"}
    downloaded = read_csv(services, "clicks", flt, tmp_path)
    assert sorted(r["ClickId"] for r in downloaded) == expected
    assert set(downloaded[0]) >= {*browse.CLICKS.dtype.column_names, "Connection", "Run", "Line"}

    # search and the date range
    found = services.browse_rows("clicks", BrowseFilter(text="/P/12"), page_size=1000)
    assert found.column("ClickId").to_pylist() == ["a-0012"]
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    assert services.browse_summary("clicks", BrowseFilter(start=tomorrow)).rows == 0


def test_pages_are_newest_first_and_do_not_overlap(services: Services, make_connection) -> None:
    clicks(services, make_connection)
    first = services.browse_rows("clicks", BrowseFilter(), page=1, page_size=10)
    second = services.browse_rows("clicks", BrowseFilter(), page=2, page_size=10)
    third = services.browse_rows("clicks", BrowseFilter(), page=3, page_size=10)
    assert (first.num_rows, second.num_rows, third.num_rows) == (10, 10, 5)
    ids = first.column("ClickId").to_pylist() + second.column("ClickId").to_pylist()
    ids += third.column("ClickId").to_pylist()
    assert len(set(ids)) == N + 5
    dates = first.column("EventDate").to_pylist() + second.column("EventDate").to_pylist()
    assert dates == sorted(dates, reverse=True)


def test_catalog_filters_by_category_stock_price_and_name(
    services: Services, make_connection, tmp_path
) -> None:
    catalog(services, make_connection)

    options = services.browse_options("product_catalogs")
    assert options.values["Category"] == ["Garden", "Home > Widgets"]
    assert options.values["StockAvailability"] == ["InStock", "OutOfStock"]
    assert (options.low, options.high) == (Decimal("10.00"), Decimal("29.00"))
    assert options.first_day == dt.datetime.now(dt.UTC).date()  # the day it was loaded

    flt = BrowseFilter(
        values={"Category": ("Home > Widgets",), "StockAvailability": ("InStock",)},
        low=Decimal("13"), high=Decimal("20.50"),
    )  # fmt: skip
    expected = [f"SKU-{i:04d}" for i in range(N) if i % 2 and i < 12 and 13 <= 10 + i <= 20.5]
    summary = services.browse_summary("product_catalogs", flt)
    assert summary.rows == len(expected) == 4
    kpis = {k.label: v for k, v in summary.kpis}
    assert kpis["In stock"] == 4 and kpis["Categories"] == 1
    assert kpis["Average price"] == Decimal("16.00")  # 13, 15, 17, 19
    rows = services.browse_rows("product_catalogs", flt)
    assert sorted(rows.column("CatalogItemId").to_pylist()) == expected
    assert rows.column_names[0] == browse.LOADED_AT

    by_name = services.browse_rows("product_catalogs", BrowseFilter(text="widget 1"), page_size=1000)
    assert sorted(by_name.column("Name").to_pylist()) == sorted(f"Widget {i}" for i in range(10, 20))
    by_id = services.browse_rows("product_catalogs", BrowseFilter(text="sku-0007"))
    assert by_id.column("Name").to_pylist() == ["Widget 7"]
    today = dt.datetime.now(dt.UTC).date()
    assert services.browse_summary("product_catalogs", BrowseFilter(start=today, end=today)).rows == N


def test_partner_text_is_escaped_in_the_download_and_on_screen(
    services: Services, make_connection, tmp_path
) -> None:
    catalog(services, make_connection)
    formula = '=HYPERLINK("http://evil.example","x")'

    rows = read_csv(services, "product_catalogs", BrowseFilter(text="SKU-0000"), tmp_path)
    assert rows[0]["Name"] == csv_cell(formula) == "'" + formula

    shown = browse.visible_table(services.browse_rows("product_catalogs", BrowseFilter(text="SKU-0001")))
    assert shown.column("Name").to_pylist() == ["Widget\\x1b[31m red\\u202e"]


def test_bad_filters_are_refused_by_name(services: Services, make_connection) -> None:
    clicks(services, make_connection)
    with pytest.raises(InvalidInputError, match="ClickId"):
        services.browse_summary("clicks", BrowseFilter(values={"ClickId": ("a-0001",)}))
    with pytest.raises(InvalidInputError, match="MediaId"):
        services.browse_rows("clicks", BrowseFilter(values={"MediaId": ("seven",)}))
    with pytest.raises(InvalidInputError, match="no amount"):
        services.browse_summary("clicks", BrowseFilter(low=Decimal("1")))
    with pytest.raises(InvalidInputError, match="last day"):
        services.browse_summary("clicks", BrowseFilter(start=dt.date(2026, 3, 2), end=dt.date(2026, 3, 1)))
    with pytest.raises(InvalidInputError, match="data_type"):
        services.browse_options("conversions_of_nobody")
    with pytest.raises(InvalidInputError, match="page"):
        services.browse_rows("clicks", BrowseFilter(), page=0)


def test_browsing_is_for_partner_managers(services: Services, make_connection) -> None:
    clicks(services, make_connection)
    analyst = services.as_user(services.add_user("ann", Role.ANALYST, "correct horse battery staple"))
    manager = services.as_user(services.add_user("pam", Role.PARTNER_MANAGER, "correct horse battery staple"))

    with pytest.raises(PermissionDeniedError, match="Partner manager"):
        analyst.browse_summary("clicks", BrowseFilter())
    assert manager.browse_summary("clicks", BrowseFilter()).rows == N + 5


def test_an_empty_data_type_offers_nothing(services: Services) -> None:
    assert services.browse_options("clicks").is_empty
    assert services.browse_summary("product_catalogs", BrowseFilter()).rows == 0
