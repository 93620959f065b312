"""A trailing delimiter on one side only: the header ends with a delimiter and the rows do
not, or the rows do and the header does not. Both lose nothing, so both cores read such rows
instead of rejecting every one ("expected 12 fields, saw 11"); any other count mismatch is
still rejected as before. Rows ending with one empty field too many fit only where the
file's first rows all do: where a row has the header's count, such a row is a value holding
an unquoted delimiter, and dropping its empty last field shifted the values after it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectbatch.parser.api import ParseResult, parse_bytes

CC = "call_conversions"
CallCsv = Callable[..., bytes]  # the conftest builder


def parse(data: bytes, engine: str, data_type: str | None = CC, delimiter: str = ",") -> ParseResult:
    return parse_bytes(data, data_type, engine=engine, delimiter=delimiter)  # type: ignore[arg-type]


def reshaped(csv: bytes, header_end: bytes, row_end: bytes) -> bytes:
    header, *rows = csv.rstrip(b"\n").split(b"\n")
    return b"\n".join([header + header_end, *(row + row_end for row in rows)]) + b"\n"


def test_a_trailing_comma_on_the_header_alone_reads_every_row(engine: str, call_csv: CallCsv) -> None:
    data = reshaped(call_csv({"CallSessionId": "a"}, {"CallSessionId": "b"}), b",", b"")
    result = parse(data, engine)
    assert result.rejects == []
    assert result.table.column("CallSessionId").to_pylist() == ["a", "b"]


def test_a_trailing_comma_on_the_rows_alone_reads_every_row(engine: str, call_csv: CallCsv) -> None:
    data = reshaped(call_csv({"CallSessionId": "a"}, {"CallSessionId": "b", "SubId1": "s"}), b"", b",")
    result = parse(data, engine)
    assert result.rejects == []
    assert result.table.select(["CallSessionId", "SubId1"]).to_pylist() == [
        {"CallSessionId": "a", "SubId1": None},
        {"CallSessionId": "b", "SubId1": "s"},
    ]


def test_an_empty_quoted_field_is_an_empty_trailing_field_too(engine: str, call_csv: CallCsv) -> None:
    result = parse(reshaped(call_csv({}), b"", b',""'), engine)
    assert result.rejects == [] and result.table.num_rows == 1


@pytest.mark.parametrize(
    "header_end, row_end, expected, seen",
    [
        (b"", b",x", 10, 11),  # the extra field holds a value: the row is not what the header says
        (b"", b",,", 10, 12),  # two extra fields
        (b",,", b"", 12, 10),  # a header ending in two unnamed fields, a row two short
    ],
    ids=["extra-value", "two-extra", "two-short"],
)
def test_any_other_mismatch_is_still_rejected_with_its_counts(
    engine: str, call_csv: CallCsv, header_end: bytes, row_end: bytes, expected: int, seen: int
) -> None:
    result = parse(reshaped(call_csv({}), header_end, row_end), engine)
    hint = "; a value holding a comma must be in double quotes" if seen > expected else ""
    assert [(r.line, r.reason) for r in result.rejects] == [
        (2, f"expected {expected} fields, saw {seen}{hint}")
    ]


def test_a_short_row_under_a_header_with_a_named_last_column_is_still_rejected(
    engine: str, call_csv: CallCsv
) -> None:
    header, row = call_csv({}).rstrip(b"\n").split(b"\n")
    result = parse(header + b"\n" + row.rsplit(b",", 1)[0] + b"\n", engine)
    assert [r.reason for r in result.rejects] == ["expected 10 fields, saw 9"]


def test_without_a_data_type_the_unnamed_column_is_read_as_empty(engine: str) -> None:
    result = parse(b"a,b,\n1,2\n3,4,5\n", engine, None)
    assert result.table.to_pylist() == [{"a": "1", "b": "2", "": ""}, {"a": "3", "b": "4", "": "5"}]
    assert result.rejects == []
    # rows ending with a delimiter past the unnamed column, every one: their empty last field goes
    result = parse(b"a,b,\n6,7,8,\n9,10,,\n", engine, None)
    assert result.table.to_pylist() == [{"a": "6", "b": "7", "": "8"}, {"a": "9", "b": "10", "": ""}]
    assert result.rejects == []


# ------------------------------------------------------------------ an unquoted delimiter in a value

HINT = "; a value holding a comma must be in double quotes"


def shifted(call_csv: CallCsv, *amounts: str) -> bytes:
    """Call rows whose SaleAmount and (empty) VendorEventId are the last two columns."""
    header, *rows = (
        call_csv(*({"CallSessionId": f"c{i}"} for i, _ in enumerate(amounts))).rstrip(b"\n").split(b"\n")
    )
    lines = [header + b",SaleAmount,VendorEventId"]
    lines += [row + b"," + amount.encode() + b"," for row, amount in zip(rows, amounts, strict=True)]
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("order", ["first", "later"])
def test_a_row_with_an_unquoted_comma_among_rows_without_one_is_rejected_not_shifted(
    engine: str, call_csv: CallCsv, order: str
) -> None:
    # Its empty last field was dropped as a trailing delimiter's: "$1" became the amount and
    # "234.50" the VendorEventId, ACCEPTED, a $1.00 action for a $1,234.50 sale
    amounts = ["$1,234.50", "5.00"] if order == "first" else ["5.00", "$1,234.50"]
    line = 2 if order == "first" else 3
    result = parse(shifted(call_csv, *amounts), engine)
    assert [(r.line, r.reason) for r in result.rejects] == [(line, "expected 12 fields, saw 13" + HINT)]
    assert [str(a) for a in result.table.column("SaleAmount").to_pylist()] == ["5.00"]


def test_rows_that_all_end_with_a_delimiter_still_lose_only_that(engine: str, call_csv: CallCsv) -> None:
    result = parse(shifted(call_csv, "5.00", "7.00").replace(b"00,\n", b"00,,\n"), engine)
    assert result.rejects == []
    assert [str(a) for a in result.table.column("SaleAmount").to_pylist()] == ["5.00", "7.00"]


def test_another_delimiter_is_named_in_the_hint(engine: str) -> None:
    result = parse(b"a;b\n1;2\n1;2;3\n", engine, None, delimiter=";")
    assert [r.reason for r in result.rejects] == [
        "expected 2 fields, saw 3; a value holding a semicolon must be in double quotes"
    ]
