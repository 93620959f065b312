"""Excel's `sep=;` line above the header.

Exports meant for Excel often start with a `sep=,` line naming their delimiter. It was read
as the header, so the file was refused as lacking every required column, with no word about
the real cause. The line is now skipped when it names the connection's delimiter, and a
file naming another one is refused with the delimiter to set.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectbatch.errors import ParseError
from connectbatch.mapping.sample import read_sample
from connectbatch.parser.api import parse_bytes

CallCsv = Callable[..., bytes]


def with_delimiter(data: bytes, delimiter: str) -> bytes:
    return data.replace(b",", delimiter.encode())  # the builder's rows hold no comma


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_a_sep_line_naming_the_delimiter_is_skipped(engine: str, call_csv: CallCsv, delimiter: str) -> None:
    body = with_delimiter(call_csv({"CallSessionId": "a"}, {"CallSessionId": "b"}), delimiter)
    data = f"sep={delimiter}\r\n".encode() + body
    result = parse_bytes(data, engine=engine, delimiter=delimiter)  # type: ignore[arg-type]
    assert result.table.column("CallSessionId").to_pylist() == ["a", "b"]
    assert result.lines.to_pylist() == [3, 4]  # physical lines: the sep line is line 1
    assert (result.rejects, result.preamble) == ([], {})


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_a_sep_line_padded_to_the_tables_width_is_skipped(
    engine: str, call_csv: CallCsv, delimiter: str
) -> None:
    # LibreOffice and Google Sheets save the one-cell line again padded with the delimiter
    # (`sep=;;;;;;;;;;;`): it was read as the header, and every required column was missing.
    body = with_delimiter(call_csv({"CallSessionId": "a"}, {"CallSessionId": "b"}), delimiter)
    data = f"sep={delimiter * 12}\r\n".encode() + body
    result = parse_bytes(data, engine=engine, delimiter=delimiter)  # type: ignore[arg-type]
    assert result.table.column("CallSessionId").to_pylist() == ["a", "b"]
    assert result.lines.to_pylist() == [3, 4]


def test_a_sep_line_naming_another_delimiter_says_which_to_set(engine: str, call_csv: CallCsv) -> None:
    data = b"sep=;\n" + with_delimiter(call_csv({"CallSessionId": "a"}), ";")
    with pytest.raises(ParseError, match=r"^line 1: .*'sep=;'.*set the connection's delimiter to ';'$"):
        parse_bytes(data, engine=engine)  # type: ignore[arg-type]


def test_the_mapping_sample_skips_the_sep_line(call_csv: CallCsv) -> None:
    sample = read_sample(b"sep=,\n" + call_csv({"CallSessionId": "a"}))
    assert sample.header[:2] == ["CampaignId", "MediaId"]
    assert len(sample.rows) == 1
