"""Padding around a value: spaces, tabs and the no-break space (U+00A0) that spreadsheets and
web exports put where a space was typed. A partner never means them, so both cores treat a
value made only of padding as empty, the same everywhere they decide emptiness."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectbatch.parser.api import ParseResult, parse_bytes

CC = "call_conversions"
CallCsv = Callable[..., bytes]  # the conftest builder
NBSP = "\u00a0"
EMPTY = "is required and must not be empty"


def parse(data: bytes, engine: str) -> ParseResult:
    return parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]


@pytest.mark.parametrize("blank", [NBSP, f" {NBSP}\t", NBSP * 2], ids=["nbsp", "mixed", "two"])
def test_a_required_value_of_only_no_break_spaces_is_empty(
    engine: str, call_csv: CallCsv, blank: str
) -> None:
    data = call_csv({"CallerId": blank}, {"CallProvider": blank}, {"CampaignId": blank}, {})
    result = parse(data, engine)
    assert [(r.line, r.column, r.reason) for r in result.rejects] == [
        (2, "CallerId", EMPTY),
        (3, "CallProvider", EMPTY),
        (4, "CampaignId", EMPTY),
    ]
    assert result.lines.to_pylist() == [5]


def test_an_optional_typed_value_of_only_no_break_spaces_is_empty(engine: str, call_csv: CallCsv) -> None:
    row = {"IvrDuration": NBSP, "CallStatus": f"{NBSP} ", "AdId": f"\t{NBSP}", "SaleAmount": NBSP}
    result = parse(call_csv(row), engine)
    assert result.rejects == []
    got = result.table.select(["IvrDuration", "CallStatus", "AdId", "SaleAmount"]).to_pylist()
    assert got == [{"IvrDuration": None, "CallStatus": "ANSWER", "AdId": None, "SaleAmount": None}]


def test_typed_values_padded_with_no_break_spaces_are_read(engine: str, call_csv: CallCsv) -> None:
    row = {"CampaignId": f"{NBSP}77{NBSP}", "CallDuration": f"185{NBSP}", "CallStatus": f"{NBSP}cancel"}
    result = parse(call_csv(row), engine)
    assert result.rejects == []
    got = result.table.select(["CampaignId", "CallDuration", "CallStatus"]).to_pylist()
    assert got == [{"CampaignId": 77, "CallDuration": 185, "CallStatus": "CANCEL"}]
