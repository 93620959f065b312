"""A stray quote that ran on into the next records, when the record still reads as good.

`"Austin` (no closing quote) in the last column of line 2, and `Boston"` closing a quoted
cell in the same column of line 3: the cell of line 2 took the line break and the whole call
of line 3, the quote closed on a field boundary, and line 2 had its 13 fields. It was
accepted with a City holding a call, and the call of line 3 was in no row of the results:
lost, silently (a partner-file audit). Such a record is now refused, naming the lines.
"""

from __future__ import annotations

import pytest
from helpers import call_csv

from connectbatch.parser.api import ParseOptions, parse_bytes
from connectbatch.parser.batches import parse_file_batches


def _lines(n: int, newline: str = "\n") -> list[bytes]:
    """A call file's lines, no cell quoted (the helper quotes "Austin, TX")."""
    return (
        call_csv(n, prefix="s", newline=newline).replace(b'"Austin, TX"', b"Austin").split(newline.encode())
    )


def _opened(line: bytes, column: int) -> bytes:
    """`line` with a quote opened (never closed) at the start of its `column` (0-based)."""
    cells = line.split(b",")
    cells[column] = b'"' + cells[column]
    return b",".join(cells)


def _closed(line: bytes, column: int) -> bytes:
    """`line` whose `column` ends with a closing quote (it was the opening one's partner)."""
    cells = line.split(b",")
    cells[column] = cells[column] + b'"'
    return b",".join(cells)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_record_a_stray_quote_ran_on_into_is_refused_naming_the_lines(engine: str, newline: str) -> None:
    lines = _lines(4, newline)
    last = len(lines[0].split(b",")) - 1  # City
    lines[2], lines[3] = _opened(lines[2], last), _closed(lines[3], last)  # lines 3 and 4 of the file
    result = parse_bytes(
        newline.encode().join(lines), "call_conversions", options=ParseOptions(engine=engine)
    )

    assert result.table.column("CallSessionId").to_pylist() == ["s-0000", "s-0003"]
    (reject,) = result.rejects
    assert (reject.line, reject.column, reject.spans) == (3, "City", 2)
    assert reject.reason.startswith(
        "a quote opened in this cell closes only on line 4, so line 4 went into it"
    )
    assert "s-0002" in str(reject.value)  # the record that went into the cell, shown
    assert result.reject_keys == {3: "s-0001"}  # the results name the refused record
    assert result.rows_accepted + result.lines_rejected == 4  # every data line accounted for


def test_a_quote_in_a_middle_column_closed_in_that_column_further_down(engine: str) -> None:
    """Three records taken: the quote opens in CallProvider on line 2 and closes in the
    CallProvider of line 5 (lines 3 and 4 whole, line 5 up to that column)."""
    lines = _lines(6)
    provider = lines[0].split(b",").index(b"CallProvider")
    lines[1], lines[4] = _opened(lines[1], provider), _closed(lines[4], provider)
    result = parse_bytes(b"\n".join(lines), "call_conversions", options=ParseOptions(engine=engine))

    assert result.table.column("CallSessionId").to_pylist() == ["s-0004", "s-0005"]
    (reject,) = result.rejects
    assert (reject.line, reject.column, reject.spans) == (2, "CallProvider", 4)
    assert "lines 3 to 5 went into it instead of being read as records of their own" in reject.reason
    assert result.rows_accepted + result.lines_rejected == 6


@pytest.mark.parametrize(
    "city",
    [
        "Austin\nTX",  # an address on two lines
        "Suite 4, Main St\nAustin, TX 78701",  # with commas, not a record's count of them
        "a,b,c,d,e,f,g,h,i,j,k,l\nm",  # a whole record's commas, but not the shape of one
    ],
)
def test_a_text_on_several_lines_is_kept(engine: str, city: str) -> None:
    rows = [line.decode() for line in _lines(2)]
    header = rows[0].split(",")
    cells = rows[1].split(",")[: len(header) - 1]
    data = "\n".join([rows[0], ",".join([*cells, '"' + city + '"']), rows[2]]).encode()
    result = parse_bytes(data, "call_conversions", options=ParseOptions(engine=engine))
    assert result.rejects == []
    assert result.table.column("City").to_pylist()[0] == city


def test_rows_ending_with_a_delimiter_are_read_the_same(engine: str) -> None:
    lines = [line + b"," if i else line for i, line in enumerate(_lines(4)) if line]
    last = len(lines[0].split(b",")) - 1
    lines[2] = _opened(lines[2], last)
    lines[3] = _closed(lines[3], last)
    result = parse_bytes(b"\n".join(lines) + b"\n", "call_conversions", options=ParseOptions(engine=engine))
    assert [r.line for r in result.rejects] == [3]
    assert result.rows_accepted == 2


def test_a_streamed_parse_refuses_it_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = _lines(20_000)
    last = len(lines[0].split(b",")) - 1
    lines[15_000], lines[15_001] = _opened(lines[15_000], last), _closed(lines[15_001], last)
    path = tmp_path / "calls.csv"
    path.write_bytes(b"\n".join(lines))
    batches = list(parse_file_batches(path, "call_conversions", batch_bytes=256 * 1024))
    assert len(batches) > 1
    rejects = [r for b in batches for r in b.parsed.rejects]
    assert [(r.line, r.spans) for r in rejects] == [(15_001, 2)]
    assert sum(b.parsed.rows_accepted for b in batches) == 19_998


def test_among_many_quoted_line_breaks_and_blank_lines_it_is_found_too(engine: str) -> None:
    """Blank lines after 80 records, and 20 addresses on two lines: only the run-on record
    is refused (each core lists the quoted line breaks it read: CoreOutput.broken)."""
    lines = _lines(100)
    last = len(lines[0].split(b",")) - 1
    for k in range(40, 60):  # "Austin\nTX": a legitimate text on two lines
        cells = lines[k].split(b",")
        cells[last] = b'"Austin\nTX"'
        lines[k] = b",".join(cells)
    lines[90], lines[91] = _opened(lines[90], last), _closed(lines[91], last)
    body = [lines[0]] + [line + (b"\n" if 0 < i <= 80 else b"") for i, line in enumerate(lines[1:], start=1)]
    result = parse_bytes(b"\n".join(body), "call_conversions", options=ParseOptions(engine=engine))
    (reject,) = result.rejects
    assert (reject.line, reject.spans) == (90 + 80 + 20 + 1, 2)
    assert result.rows_accepted == 98
    assert result.table.column("City").to_pylist().count("Austin\nTX") == 20


def test_both_cores_list_the_quoted_line_breaks_they_read(engine: str) -> None:
    from connectbatch.parser import plan as csvplan
    from connectbatch.parser.api import _core

    data = b'a,b,c\n1,"x\ny",z\n2,"p\r\nq","r\rs"\n3,"no break",t\n'
    fields = ["a", "b", "c"]
    plan = csvplan.Plan(
        ord(","),
        tuple(fields),
        (0, 1, 2),
        tuple(csvplan.Slot(n, csvplan.CoreKind.RAW, False, None) for n in fields),
    )
    parser = _core(engine).Parser(plan, 2)
    parser.feed(data.split(b"\n", 1)[1], True)
    assert parser.finish().broken == [(2, 1), (4, 1), (4, 2)]
