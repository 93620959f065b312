"""A quote that is never closed says how many lines it took with it.

An unclosed quote makes the rest of the file one field of one record: a partner who sent 100
rows got a results file of 3 (2 accepted, 1 rejected) and a reason that said only "never
closed", so the other 97 rows seemed lost. The reason now counts the lines it took.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectbatch.parser.api import parse_bytes

CallCsv = Callable[..., bytes]


def unclosed(call_csv: CallCsv, rows: int, bad: int, newline: str) -> bytes:
    data = call_csv(*({"CallSessionId": f"s{i}"} for i in range(rows)), newline=newline)
    return data.replace(b"s%d," % bad, b'"s%d,' % bad)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_the_reject_counts_the_lines_an_unclosed_quote_took(
    engine: str, call_csv: CallCsv, newline: str
) -> None:
    result = parse_bytes(unclosed(call_csv, 100, 2, newline), engine=engine)  # type: ignore[arg-type]
    assert (result.rows_accepted, result.rows_rejected) == (2, 1)
    (reject,) = result.rejects
    assert reject.line == 4
    assert reject.reason.startswith("a quoted field starts in this record but is never closed")
    assert reject.reason.endswith("; the 97 lines after it, to the end of the file, went into it")
    assert result.rows_accepted + result.rows_rejected + 97 == 100  # every data line accounted for


def test_an_unclosed_quote_on_the_last_line_took_nothing(engine: str, call_csv: CallCsv) -> None:
    result = parse_bytes(unclosed(call_csv, 3, 2, "\n"), engine=engine)  # type: ignore[arg-type]
    (reject,) = result.rejects
    assert reject.reason.endswith("(missing closing quote)")


def test_one_line_taken_is_counted_in_the_singular(engine: str, call_csv: CallCsv) -> None:
    result = parse_bytes(unclosed(call_csv, 4, 2, "\n"), engine=engine)  # type: ignore[arg-type]
    assert result.rejects[0].reason.endswith("; the 1 line after it, to the end of the file, went into it")


@pytest.mark.parametrize("threads", [1, 2])
def test_a_stray_quote_closed_by_a_later_field_says_which_lines_went_into_its_record(
    engine: str, call_csv: CallCsv, threads: int
) -> None:
    # Found by a partner's file: a 1,000-row file gave 501 accepted and 1 rejected, lines 5-502
    # vanished into line 4's record, and neither the reason nor the reject rate said so.
    data = call_csv(*({"CallSessionId": f"s{i}", "City": "Austin"} for i in range(100)))
    lines = data.split(b"\n")
    lines[3] = lines[3].replace(b",Austin", b',"Austin')  # line 4 opens a quote by mistake
    lines[60] = lines[60].replace(b",Austin", b',"Austin, TX"')  # line 61 quotes as it should
    result = parse_bytes(b"\n".join(lines), engine=engine, threads=threads)  # type: ignore[arg-type]
    (reject,) = result.rejects
    assert reject.line == 4
    assert reject.reason.endswith(
        "; a quote opened on line 4 closes only on line 61, "
        "so the 57 lines after line 4 went into this record"
    )
    assert reject.spans == 58
    assert (result.rows_accepted, result.rows_rejected, result.lines_rejected) == (42, 1, 58)
    assert result.rows_accepted + result.lines_rejected == 100  # every data line accounted for


def test_an_unclosed_quote_counts_every_line_it_took_as_rejected(engine: str, call_csv: CallCsv) -> None:
    result = parse_bytes(unclosed(call_csv, 100, 2, "\n"), engine=engine)  # type: ignore[arg-type]
    assert (result.rows_rejected, result.lines_rejected) == (1, 98)


def test_a_one_line_reject_spans_its_line(engine: str, call_csv: CallCsv) -> None:
    data = call_csv(*({"CallSessionId": f"s{i}", "CallDuration": "x" if i == 1 else "10"} for i in range(5)))
    result = parse_bytes(data, engine=engine)  # type: ignore[arg-type]
    assert (result.rows_rejected, result.lines_rejected) == (1, 1)
    assert "went into" not in result.rejects[0].reason
