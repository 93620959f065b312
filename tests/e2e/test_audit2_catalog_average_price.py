"""The Product catalog page's "Average price" tile averages prices of one currency only (an
audit of 2026-12-07): a catalog of 10.00 EUR and 1,000 JPY items read "Average price 505.00",
a price in no currency at all. With several currencies shown the tile has no value and says
to filter by Currency; with one (by the filter) it is that currency's average."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def catalog(rows: list[tuple[str, str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["CatalogItemId", "Name", "Url", "CurrentPrice", "Currency"])
    for sku, price, currency in rows:
        writer.writerow([sku, f"Item {sku}", f"https://shop.example/{sku}", price, currency])
    return out.getvalue().encode()


def tile(at: AppTest, label: str) -> tuple[str, str]:
    [found] = [m for m in at.metric if m.label == label]
    return str(found.value), str(found.proto.help)


def test_the_average_price_is_never_one_of_several_currencies() -> None:
    services = Services()
    services.add_partner("Shop", "brand")
    created, _ = services.create_connection(
        Connection("Shop catalog", "product_catalogs", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   pattern="*"),
        partner="Shop",
    )  # fmt: skip
    run = services.ingest_bytes(
        created.id,
        "catalog.csv",
        catalog([("A", "10.00", "EUR"), ("B", "20.00", "EUR"), ("C", "1000", "JPY")]),
    )
    assert run.rows_accepted == 3, run.reason

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/catalog.py").run()
    assert not at.exception, at.exception
    value, help_text = tile(at, "Average price")
    assert value == "—", value
    assert "filter by Currency" in help_text

    at.multiselect(key="product_catalogs_Currency").set_value(["EUR"]).run()
    assert not at.exception, at.exception
    assert tile(at, "Average price")[0] == "15.00"
