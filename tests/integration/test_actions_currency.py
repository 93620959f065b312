"""An action keeps the currency its row named (conversions' CurrencyCode): a brand's JPY order
of 12000.00 was listed as a bare 12000.00 on the Actions page and in the CLI, read as dollars."""

from __future__ import annotations

import datetime as dt

from helpers import call_csv

from connectbatch.services import Services

HEADER = "CampaignId,ActionTrackerId,EventDate,OrderId,Amount,CurrencyCode"


def test_an_action_keeps_the_currency_its_row_named(services: Services, make_connection) -> None:
    make_connection("Shop", "conversions")
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [f"1234,20002,{when},JP-1,12000.00,JPY", f"1234,20002,{when},US-1,25.00,"]
    run = services.ingest_bytes("Shop", "orders.csv", "\r\n".join([HEADER, *rows]).encode() + b"\r\n")
    assert run.actions_created == 2, run.reason

    by_key = {a.source_key: a for a in services.actions("Shop")}
    assert (by_key["JP-1"].currency, by_key["JP-1"].amount_text) == ("JPY", "12000.00 JPY")
    assert (by_key["US-1"].currency, by_key["US-1"].amount_text) == ("USD", "25.00 USD")


def test_a_call_conversions_action_names_no_currency(services: Services, make_connection) -> None:
    """Call conversions carry a SaleAmount in the program's currency and no currency column."""
    make_connection("Calls", "call_conversions")
    run = services.ingest_bytes("Calls", "calls.csv", call_csv(1))
    [action] = services.actions("Calls")
    assert run.actions_created == 1 and action.currency is None
    assert action.amount_text == str(action.amount)
