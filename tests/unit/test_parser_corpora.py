"""Conformance on third-party material in ../shared/corpora (see each folder's SOURCES.txt).

csv-spectrum and the W3C CSVW subset carry expected JSON; DuckDB's edge cases carry DuckDB's
own (lenient, sniffing) behaviour, so each file below states what *our* strict RFC 4180
parser should do with it: rows, row rejects, or one readable ParseError. Our parser always
reads the first record as the header, also where DuckDB was told there is none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.shared import shared_files, shared_root

from connectbatch.errors import ParseError
from connectbatch.parser.api import ParseResult, parse_file

CORPORA = shared_root() / "corpora"


def found(folder: str, pattern: str) -> list[Any]:
    """Test parameters for the files of one corpus; one skipped (failed on CI) if none."""
    return shared_files(f"corpora/{folder}", pattern)


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"corpus file missing: {path} (is ../shared/corpora complete?)")
    return path


def raw(path: Path, engine: str, **kw: Any) -> ParseResult:
    return parse_file(need(path), None, engine=engine, **kw)  # type: ignore[arg-type]


def records(result: ParseResult) -> list[list[str]]:
    return [list(row.values()) for row in result.table.to_pylist()]


# ------------------------------------------------------------------ csv-spectrum


@pytest.mark.parametrize("path", found("csv-spectrum/csvs", "*.csv"))
def test_csv_spectrum_case_equals_its_json(corpora: Path, engine: str, path: Path) -> None:
    expected = json.loads((path.parent.parent / "json" / f"{path.stem}.json").read_text("utf-8"))
    assert raw(path, engine).table.to_pylist() == expected


# ------------------------------------------------------------------ W3C CSVW subset


def described(name: str) -> list[dict[str, str]]:
    doc = json.loads(need(CORPORA / "w3c-csvw-tests" / name).read_text("utf-8"))
    if isinstance(doc, list):  # minimal mode: the rows themselves
        return doc
    return [row["describes"][0] for row in doc["tables"][0]["row"]]


def assert_cells_match(result: ParseResult, expected: list[dict[str, str]]) -> None:
    """CSVW leaves empty cells out of the JSON; we keep them as ""."""
    rows = result.table.to_pylist()
    assert len(rows) == len(expected)
    for ours, theirs in zip(rows, expected, strict=True):
        assert set(theirs) <= set(ours)
        assert ours == {name: theirs.get(name, "") for name in ours}


W3C = [p for p in found("w3c-csvw-tests", "test*.csv") if "test019" not in str(p.values[0])]


@pytest.mark.parametrize("path", [p for p in W3C if "test091" not in str(p.values[0])])
def test_w3c_case_cells_equal_the_described_values(corpora: Path, engine: str, path: Path) -> None:
    assert_cells_match(raw(path, engine), described(f"{path.stem}.json"))


@pytest.mark.parametrize("expected", ["test028.json", "test029.json"])
def test_w3c_countries_in_standard_and_minimal_mode(corpora: Path, engine: str, expected: str) -> None:
    assert_cells_match(raw(CORPORA / "w3c-csvw-tests" / "countries.csv", engine), described(expected))


def test_w3c_file_without_header_reads_its_first_row_as_the_header(corpora: Path, engine: str) -> None:
    # test019 is served with header=absent; we have no such switch, so nothing may be lost:
    # the header plus the rows are exactly the described records, in column order.
    result = raw(CORPORA / "w3c-csvw-tests" / "test019.csv", engine)
    assert [result.header, *records(result)] == [list(r.values()) for r in described("test019.json")]


def test_w3c_rows_with_differing_column_counts_are_rejected(corpora: Path, engine: str) -> None:
    result = raw(CORPORA / "w3c-csvw-tests" / "test091.csv", engine)
    assert records(result) == [["1", "2", "3"]]
    assert [(r.line, r.reason) for r in result.rejects] == [
        (3, "expected 3 fields, saw 2"),
        (4, "expected 3 fields, saw 1"),
    ]


# ------------------------------------------------------------------ DuckDB edge cases

PIPE, SEMI = {"delimiter": "|"}, {"delimiter": ";"}
COMMA_HINT = "; a value holding a comma must be in double quotes"  # a row with too many fields
LATIN1 = {"encoding": "latin-1"}

# file -> (options, outcome): a header and records (None: only count them), an int row
# count, a list of (line, reason) rejects after the records, or an error message pattern.
DUCKDB: dict[str, tuple[dict[str, str], Any]] = {
    "auto__rfc_conform_quote.csv": (
        {},
        (
            ["123", "TEST2", "one space"],
            [["345", "TEST2", "trailing_space, "], ["567", "TEST2", 'no"space']],
        ),
    ),
    "auto__utf8bom.csv": ({}, (["id", "name"], [["1", "Mark"], ["2", "Hannes"]])),
    "double_quoted_header.csv": ({}, (['foo "bar', "name"], [["1", "rob"], ["2", "sally"]])),
    "empty.csv": ({}, "the file is empty"),
    "empty_first_line.csv": ({}, (["a 1"], [["b 2"], ["c 3"]])),
    "encodings__latin1.csv": (LATIN1, (["name", "age"], 12)),
    "encodings__only_latin1.csv": (LATIN1, (["ýýýýýýý ýýýýýýýý", "ý"], 5)),
    "encodings__only_utf16.csv": ({}, (["ŁŁŁŁŁŁŁ ŁŁŁŁŁŁŁŁ", "Ł"], 5)),
    "encodings__shift_jis.csv": ({"encoding": "shift_jis"}, (["名前", "年齢"], 20)),
    "encodings__utf16.csv": ({}, (["name", "age"], 20)),
    "header_only.csv": ({}, (["abs_file_name"], [])),
    "headers__empty_1.csv": (
        {},
        (["a", "b", "c", "  ", "e"], [["1", "2", "3", "4", "5"], ["6", "7", "8", "9", "10"]]),
    ),
    "headers__escaped_quote.csv": (
        {},
        (["Name", "Escaped''Quote"], [["Alice", "123"], ["Bob", "456"]]),
    ),
    "headers__unescaped_quote.csv": (
        {},
        (["Name", "Unescaped'Quote"], [["Alice", "123"], ["Bob", "456"]]),
    ),
    "invalid_utf8.csv": ({}, (["bla"], [["bla"], ["\ufffd"]])),  # FD FF is U+FFFD in UTF-16 LE
    "line_too_long.csv.gz": ({}, "no complete header line in the first 1,048,576 bytes"),
    "lineitem-carriage.csv": (PIPE, (None, 10)),
    "locations_header_trailing_comma.csv": (  # the unnamed last column is read as empty
        {},
        (["id", "name", "lat", "lon", ""], [["1", "name", "0", "0", ""]]),
    ),
    "locations_row_trailing_comma.csv": (
        {},
        (["id", "name", "lat", "lon"], [], [(2, "expected 4 fields, saw 5" + COMMA_HINT)]),
    ),
    "mixed_new_line.csv": ({}, (["1", "2", "3"], [["4", "5", "6"], ["7", "8", "9"]])),
    "mixed_new_line_2.csv": (
        {},
        (["1", "23"], [["4", "5"], ["7", "89"]], [(3, "expected 2 fields, saw 1")]),
    ),
    "multidelimiter__file_ends_in_quoted_value.csv": ({}, ([""], [])),
    "multidelimiter__simple_unterminated_quote.csv": (
        {},
        "line 1: the header has a quoted name that is never closed",
    ),
    "multidelimiter__unterminated_quote_multi_line.csv": (
        {},
        "line 1: the header has a quoted name that is never closed",
    ),
    "multidelimiter__windows_newline.csv": ({}, (["ABAB"], [["ABAC"]])),
    "null_terminator.csv": ({}, "line 1: header column 1 contains a NUL byte"),
    "nullbyte.csv": (
        PIPE,
        (["col1", "col2", "col3"], [], [(2, "contains a NUL byte (binary data is not allowed)")]),
    ),
    "nullbyte_header.csv": (PIPE, "line 1: header column 2 contains a NUL byte"),
    "quoted_newline.csv": ({}, (["col1"], [["cell with\nnewline"]])),
    "real__greek_utf8.csv": (PIPE, (["1689", "00i\\047m", "2"], 7)),
    "test__error_too_little.csv": (
        {},
        (["i", "j"], [[str(i), str(i)] for i in range(1, 6)], [(7, "expected 2 fields, saw 1")]),
    ),
    "test__error_too_many.csv": (
        {},
        (
            ["i", "j"],
            [["1", "1"], ["2", "2"], ["3", "3"], ["4", "4"], ["5", "5"]],
            [(6, "expected 2 fields, saw 3" + COMMA_HINT)],
        ),
    ),
    "test__invalid_utf.csv": (
        PIPE,
        "line 1: header column 3 is not valid utf-8 text",
    ),
    "test__mixed_line_endings.csv": (
        {},
        (["10", "hello", "20"], [["20", "world", "30"], ["30", "test", "30"]]),
    ),
    "test__new_line_string_rn.csv": (
        PIPE,
        (
            ["1", "6370", "371", "p1"],
            [["10", "214", "465", "p2" + "\r\nbla" * 15], ["100", "2403", "160", "p3"]],
        ),
    ),
    "test__quoted_newline.csv": (
        {},
        (["hello\nworld", "5"], [["what,\n brings, you here\n , today", "6"]]),
    ),
    "test__unterminated.csv": ({}, "line 1: the header has a quoted name that is never closed"),
    "unescaped_quotes__unescaped_quote.csv": (
        SEMI,
        "line 1: the header has text after a closing quote",
    ),
    "unescaped_quotes__unescaped_quote_new_line_rn.csv": (
        SEMI,
        "line 1: the header has text after a closing quote",
    ),
}


@pytest.mark.parametrize("path", found("duckdb-csv", "*.csv*"))
def test_duckdb_edge_case_gives_the_expected_rows_or_error(corpora: Path, engine: str, path: Path) -> None:
    assert path.name in DUCKDB, f"no expectation written for {path.name}"
    options, outcome = DUCKDB[path.name]
    if isinstance(outcome, str):
        with pytest.raises(ParseError) as err:
            raw(path, engine, **options)
        assert outcome in str(err.value)
        return
    header, rows, *rejects = outcome
    result = raw(path, engine, **options)
    if header is not None:
        assert result.header == header
    assert (len(records(result)) if isinstance(rows, int) else records(result)) == rows
    assert [(r.line, r.reason) for r in result.rejects] == (rejects[0] if rejects else [])


@pytest.mark.parametrize("path", found("duckdb-csv", "*.csv*"))
@pytest.mark.parametrize("delimiter", [",", "|", ";"])
def test_duckdb_edge_case_never_raises_anything_but_a_readable_parse_error(
    corpora: Path, engine: str, path: Path, delimiter: str
) -> None:
    for data_type in (None, "call_conversions"):
        try:
            parse_file(need(path), data_type, delimiter=delimiter, engine=engine)  # type: ignore[arg-type]
        except ParseError as exc:
            message = str(exc)
            assert 10 < len(message) < 600 and message.isprintable(), message


# ------------------------------------------------------------------ call-tracking formats


def test_invoca_header_only_file_lists_its_columns(corpora: Path, engine: str) -> None:
    path = CORPORA / "call-tracking-formats" / "invoca_transactions_api_advertiser_columns_header_only.csv"
    result = raw(path, engine)
    assert result.header == need(path).read_text("utf-8").strip().split(",")
    assert (len(result.header), result.table.num_rows, result.rejects) == (51, 0, [])
    # The hints name the vendor's own column for each of ours (mapping.vendors).
    with pytest.raises(
        ParseError,
        match=r"lacks required call conversions columns: CampaignId \(the file has "
        r"'advertiser_campaign_id_from_network'; map it or rename it\), MediaId",
    ):
        parse_file(path, engine=engine)  # type: ignore[arg-type]


def test_google_ads_preamble_line_is_split_off_the_header(corpora: Path, engine: str) -> None:
    # Issue 12 (was: no preamble support, "Parameters:TimeZone=..." read as the header): the
    # preamble is split off, its settings kept (the time zone is used), the header read after it.
    result = raw(CORPORA / "call-tracking-formats" / "google_ads_call_conversions_header_only.csv", engine)
    assert result.preamble == {"TimeZone": "America/Los_Angeles"}
    assert result.header[:2] == ["Caller's Phone Number", "Call Start Time"]
    assert (len(result.header), result.table.num_rows, result.rejects) == (6, 0, [])
