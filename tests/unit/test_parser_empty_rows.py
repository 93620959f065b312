"""A spreadsheet's empty rows (",,,,": Excel writes one for a row that only had formatting)
are skipped like blank lines, by both cores, on one thread and on two.

Before, each was rejected field by field (ten reasons a row) and counted against the reject
limit: a file of three good rows and five empty ones was quarantined as a whole. A record of
only Ctrl-Z (0x1A, the DOS end-of-file mark) is skipped the same way: it was rejected as
"expected 11 fields, saw 1"."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectbatch.errors import ParseError
from connectbatch.parser import blocks
from connectbatch.parser.api import parse_bytes
from connectbatch.parser.options import ParseOptions

CC = "call_conversions"
CallCsv = Callable[..., bytes]  # the conftest builder


def with_empty_rows(csv: bytes, delimiter: bytes = b",") -> bytes:
    header, *rows = csv.rstrip(b"\n").split(b"\n")
    empty = delimiter * header.count(delimiter)
    return b"\n".join([header, empty, rows[0], empty, empty, *rows[1:], empty, empty]) + b"\n"


def test_rows_of_nothing_but_delimiters_are_skipped_and_lines_still_count(
    engine: str, call_csv: CallCsv
) -> None:
    data = with_empty_rows(call_csv({}, {}, {}))
    result = parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]
    assert result.rejects == []
    assert result.table.num_rows == 3
    assert result.lines.to_pylist() == [3, 6, 7]  # physical lines: the empty rows still count


def test_a_short_or_long_empty_row_is_skipped_too_but_not_one_with_a_value(
    engine: str, call_csv: CallCsv
) -> None:
    good = call_csv({}).rstrip(b"\n")
    data = good + b"\n,,,\n" + b"," * 40 + b"\n,,x,,\n"
    result = parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]
    assert result.table.num_rows == 1
    assert [r.line for r in result.rejects] == [5]  # the row holding an "x" is a row


@pytest.mark.parametrize("threads", [1, 2])
def test_the_threaded_parse_skips_them_the_same(
    call_csv: CallCsv, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 16 * 1024)  # several blocks, cut anywhere
    data = with_empty_rows(call_csv(*({} for _ in range(3000))))
    result = parse_bytes(data, CC, options=ParseOptions(threads=threads))
    assert result.rejects == [] and result.table.num_rows == 3000


def test_a_semicolon_files_empty_rows_are_skipped(engine: str, call_csv: CallCsv) -> None:
    data = with_empty_rows(call_csv({}, {}).replace(b",", b";"), b";")
    result = parse_bytes(data, CC, options=ParseOptions(delimiter=";", engine=engine))  # type: ignore[arg-type]
    assert result.rejects == [] and result.table.num_rows == 2


@pytest.mark.parametrize("end", [b"\x1a", b"\x1a\r\n", b"\x1a\n", b"\r\n\x1a"], ids=repr)
def test_a_dos_end_of_file_mark_after_the_last_row_is_no_row(
    engine: str, call_csv: CallCsv, end: bytes
) -> None:
    data = call_csv({}, {}, newline="\r\n") + end
    result = parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]
    assert result.rejects == [] and result.table.num_rows == 2


def test_a_dos_end_of_file_mark_between_two_joined_files_is_no_row_either(
    engine: str, call_csv: CallCsv
) -> None:
    one, two = call_csv({"CallSessionId": "a"}), call_csv({"CallSessionId": "b"})
    data = one + b"\x1a\n" + two.split(b"\n", 1)[1] + b"\x1a"
    result = parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]
    assert result.rejects == []
    assert result.table.column("CallSessionId").to_pylist() == ["a", "b"]
    assert result.lines.to_pylist() == [2, 4]


def test_a_row_holding_more_than_the_mark_is_still_a_row(engine: str, call_csv: CallCsv) -> None:
    data = call_csv({}) + b"\x1a,\n\x1ax\n"
    result = parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]
    assert [(r.line, r.reason) for r in result.rejects] == [
        (3, "expected 10 fields, saw 2"),
        (4, "expected 10 fields, saw 1"),
    ]


@pytest.mark.parametrize("blank", [b"   ", b"\t", b" \t ", b" , ,\t,", b"\t,\t"], ids=repr)
def test_a_line_of_only_spaces_tabs_and_delimiters_is_skipped_too(
    engine: str, call_csv: CallCsv, blank: bytes
) -> None:
    # Was rejected as "expected 10 fields, saw 1" (a hand-edited file's trailing line)
    one, two = call_csv({"CallSessionId": "a"}), call_csv({"CallSessionId": "b"})
    data = one + blank + b"\n" + two.split(b"\n", 1)[1] + blank
    result = parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]
    assert result.rejects == []
    assert result.table.column("CallSessionId").to_pylist() == ["a", "b"]
    assert result.lines.to_pylist() == [2, 4]


def test_a_row_with_a_value_among_blanks_is_still_a_row(engine: str, call_csv: CallCsv) -> None:
    data = call_csv({}) + b" , x ,\n" + b'" ",,\n'
    result = parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]
    assert [(r.line, r.reason) for r in result.rejects] == [
        (3, "expected 10 fields, saw 3"),
        (4, "expected 10 fields, saw 3"),  # a quoted blank is a value someone wrote
    ]


@pytest.mark.parametrize("above", [b"  \n", b",,,,,,\n", b"\t\n,,\n\n", b"  \r\n,,\r\n"], ids=repr)
def test_empty_rows_above_the_header_are_skipped_and_lines_still_count(
    engine: str, call_csv: CallCsv, above: bytes
) -> None:
    # The first of them was taken for the header: "the header lacks required columns"
    data = above + call_csv({"CallSessionId": "a"}, {"CallDuration": "x"})
    result = parse_bytes(data, CC, engine=engine)  # type: ignore[arg-type]
    skipped = above.count(b"\n")
    assert result.table.column("CallSessionId").to_pylist() == ["a"]
    assert result.lines.to_pylist() == [skipped + 2]
    assert [r.line for r in result.rejects] == [skipped + 3]


def test_a_header_line_number_counts_the_empty_rows_above_it(engine: str) -> None:
    with pytest.raises(ParseError, match=r"^line 3: the header lacks required"):
        parse_bytes(b" \n,,\nName,Other\nx,y\n", CC, engine=engine)  # type: ignore[arg-type]


def test_a_file_of_only_empty_rows_has_no_header(engine: str) -> None:
    with pytest.raises(ParseError, match="the file is empty: there is no header line"):
        parse_bytes(b"  \n,,,\n\t\n", CC, engine=engine)  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", [1, 2])
def test_the_threaded_parse_skips_blank_lines_the_same(
    call_csv: CallCsv, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 16 * 1024)
    header, *rows = call_csv(*({} for _ in range(3000))).rstrip(b"\n").split(b"\n")
    data = b"\n".join([header, *(r + b"\n  \t" for r in rows)]) + b"\n"
    result = parse_bytes(data, CC, options=ParseOptions(threads=threads))
    assert result.rejects == [] and result.table.num_rows == 3000


def test_a_quoted_blank_first_line_is_a_header_not_an_empty_row(engine: str) -> None:
    with pytest.raises(ParseError, match=r"^line 1: the header lacks required"):
        parse_bytes(b'" ",,\nName,Other,x\n', CC, engine=engine)  # type: ignore[arg-type]
