"""A big batch's expectations are judged on several threads (`batch._evaluated`), with the
very report one thread gives: same outcomes, same order, same failing lines."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest

from connectbatch.parser.api import parse_bytes
from connectbatch.pipeline.validation import batch, columnar, validate

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


class CallCsv(Protocol):  # the conftest builder
    def __call__(self, *rows: Mapping[str, str]) -> bytes: ...


def _rows() -> list[dict[str, str]]:
    """Rows that fail several expectations: a repeated key, a bad status, a late date."""
    rows = [{"CallSessionId": f"cs-{i}"} for i in range(300)]
    rows[7] = {"CallSessionId": "cs-1"}
    rows[20] = {"CallSessionId": "cs-20", "CallStatus": "NOT_A_STATUS"}
    rows[40] = {"CallSessionId": "cs-40", "EventDate": "2019-01-01T00:00:00Z"}
    return rows


def _report(call_csv: CallCsv, threads: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("CONNECTBATCH_PARSE_THREADS", threads)
    parsed = parse_bytes(call_csv(*_rows()), "call_conversions")
    report = validate(parsed.table, "call_conversions", now=NOW, lines=parsed.lines)
    return {"raw": report.raw, "outcomes": [vars(o) for o in report.outcomes], "success": report.success}


def test_threads_judge_as_one_thread(call_csv: CallCsv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "PARALLEL_MIN_ROWS", 100)
    seen: set[str] = set()
    evaluate = columnar.evaluate

    def noting(*args: Any) -> Any:
        seen.add(threading.current_thread().name)
        return evaluate(*args)

    monkeypatch.setattr(columnar, "evaluate", noting)
    one = _report(call_csv, "1", monkeypatch)
    assert seen == {threading.current_thread().name}
    seen.clear()
    two = _report(call_csv, "2", monkeypatch)
    assert seen and all(name.startswith("validate") for name in seen)
    assert not one["success"]
    assert json.dumps(one, sort_keys=True, default=str) == json.dumps(two, sort_keys=True, default=str)


def test_small_batch_stays_on_the_calling_thread(call_csv: CallCsv, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()
    evaluate = columnar.evaluate

    def noting(*args: Any) -> Any:
        seen.add(threading.current_thread().name)
        return evaluate(*args)

    monkeypatch.setattr(columnar, "evaluate", noting)
    _report(call_csv, "2", monkeypatch)
    assert seen == {threading.current_thread().name}
