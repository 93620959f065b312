"""The Call data page's Sale amount tile: short enough for its tile at 1280 px (nine
characters), never "$1,000.0K", a refund's minus sign before the dollar."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app_pages.call_data import money


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "$0.00"),
        ("9999.99", "$9,999.99"),
        ("35171.43", "$35.2K"),
        ("622912.10", "$622.9K"),
        ("999949.99", "$999.9K"),
        ("999950.00", "$1.00M"),
        ("57980000", "$57.98M"),
        ("-35171.43", "-$35.2K"),
        ("-12.50", "-$12.50"),
    ],
)
def test_money(amount: str, shown: str) -> None:
    assert money(Decimal(amount)) == shown
    assert len(shown) <= 9
