"""The verdict's sentence counts in words a reviewer reads as written: "1 row", "1 warning
expectation", not "1 rows"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from connectbatch.parser.api import parse_bytes
from connectbatch.pipeline import review
from connectbatch.pipeline.validation import validate

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)  # conftest's rows have EventDate 2026-03-01


class CallCsv(Protocol):  # the conftest builder
    def __call__(self, *rows: Mapping[str, str]) -> bytes: ...


def _headline(call_csv: CallCsv, *rows: Mapping[str, str]) -> str:
    parsed = parse_bytes(call_csv(*rows), "call_conversions")
    return review.headline(validate(parsed.table, "call_conversions", now=NOW, lines=parsed.lines))


def test_one_row_is_a_row(call_csv: CallCsv) -> None:
    text = _headline(call_csv, {"CallSessionId": "cs-1"})
    assert text.startswith("Every expectation passed (") and text.endswith(" checked on 1 row).")


def test_many_rows_and_one_warning(call_csv: CallCsv) -> None:
    rows = [{"CallSessionId": f"cs-{i}"} for i in range(1_200)]
    rows[3] = {"CallSessionId": "cs-3", "TalkDuration": "999", "CallDuration": "10"}
    text = _headline(call_csv, *rows)
    assert "checked on 1,200 rows)" in text
    assert text.startswith("No critical failures; 1 warning expectation failed (")
