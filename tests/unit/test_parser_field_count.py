"""A trailing delimiter on one side only: the header ends with a delimiter and the rows do
not, or the rows do and the header does not. Both lose nothing, so both cores read such rows
instead of rejecting every one ("expected 12 fields, saw 11"); any other count mismatch is
still rejected as before."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectbatch.parser.api import ParseResult, parse_bytes

CC = "call_conversions"
CallCsv = Callable[..., bytes]  # the conftest builder


def parse(data: bytes, engine: str, data_type: str | None = CC) -> ParseResult:
    return parse_bytes(data, data_type, engine=engine)  # type: ignore[arg-type]


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
    assert [(r.line, r.reason) for r in result.rejects] == [(2, f"expected {expected} fields, saw {seen}")]


def test_a_short_row_under_a_header_with_a_named_last_column_is_still_rejected(
    engine: str, call_csv: CallCsv
) -> None:
    header, row = call_csv({}).rstrip(b"\n").split(b"\n")
    result = parse(header + b"\n" + row.rsplit(b",", 1)[0] + b"\n", engine)
    assert [r.reason for r in result.rejects] == ["expected 10 fields, saw 9"]


def test_without_a_data_type_the_unnamed_column_is_read_as_empty(engine: str) -> None:
    result = parse(b"a,b,\n1,2\n3,4,5\n6,7,8,\n", engine, None)
    assert result.table.to_pylist() == [
        {"a": "1", "b": "2", "": ""},
        {"a": "3", "b": "4", "": "5"},
        {"a": "6", "b": "7", "": "8"},
    ]
    assert result.rejects == []
