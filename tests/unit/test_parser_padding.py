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


# ------------------------------------------------------------------ text columns are trimmed too


def test_a_padded_key_is_the_same_key_as_the_unpadded_one(engine: str, call_csv: CallCsv) -> None:
    spellings = ["w-1", "w-1 ", " w-1", "\tw-1", f"w-1{NBSP}", f" {NBSP}w-1\t "]
    result = parse(call_csv(*({"CallSessionId": s} for s in spellings)), engine)
    assert result.rejects == []
    assert result.table.column("CallSessionId").to_pylist() == ["w-1"] * len(spellings)


def test_every_text_column_of_a_typed_file_is_trimmed_and_blank_is_null(
    engine: str, call_csv: CallCsv
) -> None:
    row = {"CallerId": " +15551234567 ", "SubId1": "\t a b \t", "Zip": f"{NBSP}02134", "SubId2": "  "}
    row |= {"City": "voilà", "Region": "à ", "Country": "x\ty"}  # C3 A0 is no padding
    result = parse(call_csv(row), engine)
    assert result.rejects == []
    got = result.table.select([*row]).to_pylist()
    assert got == [
        {"CallerId": "+15551234567", "SubId1": "a b", "Zip": "02134", "SubId2": None}
        | {"City": "voilà", "Region": "à", "Country": "x\ty"}
    ]


def test_the_key_kept_for_a_rejected_record_is_trimmed(engine: str, call_csv: CallCsv) -> None:
    result = parse(call_csv({"CallSessionId": " w-2 ", "CampaignId": "x"}), engine)
    assert result.reject_keys == {2: "w-2"}


def test_a_file_without_a_data_type_keeps_its_text_as_written(engine: str) -> None:
    result = parse_bytes(b"a,b\n w-1 , \n", None, engine=engine)  # type: ignore[arg-type]
    assert result.table.to_pylist() == [{"a": " w-1 ", "b": " "}]
