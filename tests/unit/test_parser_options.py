"""ParseOptions: the settings of one parse in one value, equal to the documented keywords."""

from __future__ import annotations

import dataclasses
import gzip
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectbatch import csvparse
from connectbatch.errors import ParseError
from connectbatch.parser import ParseOptions, api

CSV = b"ProductId;CallStart\nA1;2026-03-01 14:05:09\nB2;2026-03-01T08:00:00Z\n"
CallCsv = Callable[..., bytes]  # the conftest builder
ENTRY_POINTS: list[Callable[..., Any]] = [api.parse_bytes, api.parse_file]


def _observable(result: csvparse.ParseResult) -> tuple[Any, ...]:
    return (result.table.to_pylist(), [str(r) for r in result.rejects], result.encoding, result.header)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_the_keywords_are_the_options_fields_with_the_same_defaults(entry: Callable[..., Any]) -> None:
    """One list of settings: a keyword added, dropped or re-defaulted on one side fails here."""
    parameters = inspect.signature(entry).parameters
    keywords = {
        name: p.default
        for name, p in parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "options"
    }
    if entry is api.parse_file:  # whether this file may be mapped: about the file, not a setting
        assert keywords.pop("mapped") is False
    assert keywords == {f.name: f.default for f in dataclasses.fields(ParseOptions)}
    assert parameters["options"].default is None


def test_options_is_exported_where_the_parser_is() -> None:
    from connectbatch import parser

    assert parser.ParseOptions is ParseOptions
    assert "ParseOptions" in parser.__all__


def test_options_are_frozen() -> None:
    options = ParseOptions(delimiter=";")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.delimiter = ","  # type: ignore[misc]


def test_parse_bytes_with_options_equals_the_keywords(engine: str, call_csv: CallCsv) -> None:
    data = call_csv(
        {"EventDate": "2026-03-01 14:05:09", "Sub One": "p-1"},
        {"EventDate": "2026-07-01 14:05:09", "CallDuration": "-1"},
    ).replace(b",", b";")
    keywords: dict[str, Any] = {
        "delimiter": ";", "timezone": "Europe/Paris", "engine": engine, "column_map": {"Sub One": "SubId1"},
    }  # fmt: skip
    by_keywords = csvparse.parse_bytes(data, "call_conversions", **keywords)
    by_options = csvparse.parse_bytes(data, "call_conversions", options=ParseOptions(**keywords))
    assert _observable(by_options) == _observable(by_keywords)
    assert (by_options.rows_accepted, by_options.rows_rejected) == (1, 1)


def test_parse_file_with_options_equals_the_keywords(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "calls.csv.gz"
    path.write_bytes(gzip.compress(CSV.replace(b";", b"\t").decode().encode("cp1252")))
    keywords: dict[str, Any] = {"delimiter": "\t", "encoding": "cp1252", "engine": engine}
    seen: list[tuple[int, int]] = []
    by_options = csvparse.parse_file(
        path, None, options=ParseOptions(**keywords, progress=lambda done, rows: seen.append((done, rows)))
    )
    assert _observable(by_options) == _observable(csvparse.parse_file(path, None, **keywords))
    assert seen and seen[-1][1] == 2


def test_max_bytes_in_options_is_enforced() -> None:
    with pytest.raises(ParseError, match="over the limit of 10 bytes"):
        csvparse.parse_bytes(CSV, None, options=ParseOptions(max_bytes=10))


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_options_and_keywords_together_are_refused(entry: Callable[..., Any], tmp_path: Path) -> None:
    target: Any = CSV if entry is api.parse_bytes else tmp_path / "never-opened.csv"
    with pytest.raises(TypeError, match=r"not both.*timezone"):
        entry(target, None, options=ParseOptions(), timezone="Europe/Paris")


def test_a_keyword_left_at_its_default_does_not_override_options() -> None:
    result = csvparse.parse_bytes(CSV, None, delimiter=",", options=ParseOptions(delimiter=";"))
    assert result.header == ["ProductId", "CallStart"]
