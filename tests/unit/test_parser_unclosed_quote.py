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
