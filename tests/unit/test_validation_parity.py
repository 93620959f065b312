"""The columnar evaluator against great-expectations, the reference: on generated batches
(nulls, boundaries, duplicates, time zones, decimals, empty batches, all-null columns) every
expectation type the suites use gives GX's result, field for field (success, counts, float-equal
percentages, unexpected values in GX's order, row indexes, partial counts); and the five real
suites give identical reports either way. GX runs here as the oracle, so these tests are slow
by GX's standards; example counts are kept modest. No timing assertions."""

from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers.bench_files import generated_calls
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectbatch import schemas
from connectbatch.parser.api import parse_file
from connectbatch.pipeline.validation import columnar, gx, suites, validate
from connectbatch.pipeline.validation.batch import ALREADY_LOADED_SUFFIX
from connectbatch.schemas import record_key

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
LO, HI = NOW - timedelta(days=90), NOW
PARAMS = {suites.MIN_EVENT_DATE: LO, suites.MAX_EVENT_DATE: HI}
WINDOW = {"$PARAMETER": suites.MIN_EVENT_DATE}, {"$PARAMETER": suites.MAX_EVENT_DATE}
CHOICES = ["USD", "EUR", "GBP"]


def _exp(type_: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return suites.expectation("parity", type_, kwargs, "critical", type_)


PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
BETWEEN = "expect_column_values_to_be_between"
COMPOUND = "expect_compound_columns_to_be_unique"
REGEX = "expect_column_values_to_not_match_regex"
# Every type and kwarg shape the suites carry (test_suites_use_only_these checks it), plus the
# run-time "already loaded" rule, mostly, strict bounds and the other ignore_row_if modes.
EXPECTATIONS = [
    _exp("expect_column_values_to_not_be_null", {"column": c}) for c in ("s", "i", "d", "ts", "allnull")
] + [
    _exp("expect_column_values_to_be_null", {"column": "s"}),
    _exp("expect_column_values_to_be_in_set", {"column": "s", "value_set": CHOICES}),
    _exp("expect_column_values_to_be_in_set", {"column": "allnull", "value_set": CHOICES}),
    _exp("expect_column_values_to_be_in_set", {"column": "s", "value_set": CHOICES, "mostly": 0.8}),
    _exp("expect_column_values_to_be_unique", {"column": "s"}),
    _exp("expect_column_values_to_be_unique", {"column": "i"}),
    _exp("expect_column_values_to_be_unique", {"column": "ts"}),
    _exp(BETWEEN, {"column": "d", "min_value": 0}),
    _exp(BETWEEN, {"column": "i", "min_value": 0}),
    _exp(BETWEEN, {"column": "i", "max_value": 86_400}),
    _exp(
        BETWEEN, {"column": "i", "min_value": 0, "max_value": 86_400, "strict_min": True, "strict_max": True}
    ),
    _exp(BETWEEN, {"column": "d", "min_value": -1.5, "max_value": 2.25, "mostly": 0.7}),
    _exp(BETWEEN, {"column": "ts", "min_value": WINDOW[0], "max_value": WINDOW[1]}),
    _exp(BETWEEN, {"column": "ts", "min_value": WINDOW[0], "strict_min": True}),
    _exp(BETWEEN, {"column": "allnull_i", "min_value": 0}),
    _exp(
        PAIR, {"column_A": "i", "column_B": "j", "or_equal": True, "ignore_row_if": "either_value_is_missing"}
    ),
    _exp(
        PAIR,
        {"column_A": "i", "column_B": "j", "or_equal": False, "ignore_row_if": "either_value_is_missing"},
    ),
    _exp(
        PAIR, {"column_A": "i", "column_B": "j", "or_equal": True, "ignore_row_if": "both_values_are_missing"}
    ),
    _exp(PAIR, {"column_A": "i", "column_B": "j", "ignore_row_if": "either_value_is_missing", "mostly": 0.5}),
    _exp(COMPOUND, {"column_list": ["s", "t"]}),
    _exp(COMPOUND, {"column_list": ["t", "s"], "ignore_row_if": "any_value_is_missing"}),
    _exp(COMPOUND, {"column_list": ["s", "t"], "ignore_row_if": "never", "mostly": 0.6}),
    _exp(COMPOUND, {"column_list": ["s", "t", "allnull"], "ignore_row_if": "all_values_are_missing"}),
    _exp(REGEX, {"column": "p", "regex": suites.SPREADSHEET_NUMBER}),
    _exp(REGEX, {"column": "allnull", "regex": suites.SPREADSHEET_NUMBER}),
    _exp(REGEX, {"column": "p", "regex": suites.SPREADSHEET_NUMBER, "mostly": 0.5}),
]

ints = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([86_399, 86_400, 86_401, 0, -1]))
decimals = st.one_of(
    st.none(), st.decimals(min_value=-5, max_value=5, places=2, allow_nan=False, allow_infinity=False)
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))])
near = st.sampled_from(
    [LO, HI, LO - timedelta(microseconds=1), HI + timedelta(microseconds=1), NOW - timedelta(days=3)]
)
stamps = st.one_of(
    st.none(),
    st.builds(lambda t, z: t.astimezone(z), near, zones),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 6, 1), timezones=zones),
)
strings = st.one_of(st.none(), st.sampled_from([*CHOICES, "usd", "", "XXX"]))
# phone numbers as sent, and as a spreadsheet mangles them (the spreadsheet-number rule)
phones = st.one_of(
    st.none(),
    st.sampled_from(["+15551234567", "1.55512E+10", "1.55512e+10", "1E5", "-2.5E-3", "15551234567", "",
                     "1.5E+10x", "x1.5E+10", "(555) 123-4567", "1.E+10", "E+10", "1.5E+", "１E5",
                     "15551234567.0", "+15551234567.00", "555.0000", "555.123.4567", "1555123456.",
                     "5551234567.01"]),
)  # fmt: skip
# a record key's second part: values that an escaped or joined form could confuse
events = st.one_of(st.none(), st.sampled_from(["e1", "e2", "", "USD", "\x1f", "\\", "\\u", "e1\x1fUSD"]))


@st.composite
def batches(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 12))
    rows = [
        (draw(strings), draw(events), draw(ints), draw(ints), draw(decimals), draw(stamps), draw(phones))
        for _ in range(n)
    ]
    s, t, i, j, d, ts, p = (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 7
    return pa.table(
        {
            "s": pa.array(s, pa.string()),
            "p": pa.array(p, pa.string()),
            "t": pa.array(t, pa.string()),
            "i": pa.array(i, pa.int64()),
            "j": pa.array(j, pa.int64()),
            "d": pa.array(d, pa.decimal128(18, 2)),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "allnull": pa.array([None] * n, pa.string()),
            "allnull_i": pa.array([None] * n, pa.int64()),
        }
    )


def _gx_results(table: pa.Table, exps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    df = columnar.prepare(table).to_pandas()
    result = gx.run_gx(df, {"name": "parity", "expectations": exps}, PARAMS)
    gx.cap_lists(result)
    out = {}
    for r in gx.jsonable(result.to_json_dict())["results"]:
        r["expectation_config"]["kwargs"].pop("batch_id", None)
        out[r["expectation_config"]["id"]] = r
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_every_expectation_type_gives_gx_result(table: pa.Table) -> None:
    reference = _gx_results(table, EXPECTATIONS)
    prepared = columnar.prepare(table)
    for e in EXPECTATIONS:
        ours = columnar.evaluate(e, prepared, PARAMS)
        assert ours is not None, e  # the evaluator answers every type the suites use
        theirs = reference[e["id"]]
        assert ours["success"] == theirs["success"], (e, ours, theirs)
        for key in ("unexpected_count", "unexpected_percent", "partial_unexpected_list", "element_count"):
            assert ours["result"].get(key) == theirs["result"].get(key), (key, e, ours, theirs)
        assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True), e


def test_long_failures_give_gx_result() -> None:
    """1,200 failing rows: GX returns 200 values and counts over those, 1,000 kept indexes."""
    n = 1200
    table = pa.table(
        {
            "s": pa.array([None if k % 7 == 0 else f"x{k % 30}" for k in range(n)], pa.string()),
            "t": pa.array([None if k % 5 == 0 else f"e{k % 3}" for k in range(n)], pa.string()),
            "p": pa.array(
                [None if k % 9 == 0 else f"{k}.5E+{k % 4}" if k % 2 else f"+1{k}" for k in range(n)]
            ),
            "i": pa.array([None if k % 11 == 0 else -(k % 40) - 1 for k in range(n)], pa.int64()),
            "j": pa.array([k % 50 for k in range(n)], pa.int64()),
            "d": pa.array([Decimal(-(k % 13)) / 4 for k in range(n)], pa.decimal128(18, 2)),
            "ts": pa.array([HI + timedelta(hours=k % 90) for k in range(n)], pa.timestamp("us", tz="UTC")),
            "allnull": pa.array([None] * n, pa.string()),
            "allnull_i": pa.array([None] * n, pa.int64()),
        }
    )
    reference = _gx_results(table, EXPECTATIONS)
    prepared = columnar.prepare(table)
    for e in EXPECTATIONS:
        ours = columnar.evaluate(e, prepared, PARAMS)
        assert ours is not None
        assert json.dumps(ours, sort_keys=True) == json.dumps(reference[e["id"]], sort_keys=True), e


def test_suites_use_only_these() -> None:
    """A type or kwarg shape added to a suite must join the generated parity test above."""
    shapes = {
        (e["type"], frozenset(e["kwargs"]) - {"mostly", "strict_min", "strict_max"}) for e in EXPECTATIONS
    }
    for path in sorted((REPO / "expectations").glob("*.json")):
        for e in json.loads(path.read_text())["expectations"]:
            assert (e["type"], frozenset(e["kwargs"])) in shapes, (path.name, e)


def test_a_newline_in_a_regex_column_falls_back_to_gx() -> None:
    """Python's `$` matches before a final newline, RE2's does not: GX answers for such a column."""
    table = pa.table({"p": pa.array(["1.5E+10\n", "1"])})
    assert (
        columnar.evaluate(_exp(REGEX, {"column": "p", "regex": suites.SPREADSHEET_NUMBER}), table, PARAMS)
        is None
    )


def test_unknown_type_falls_back_to_gx_not_to_passed() -> None:
    table = pa.table({"s": pa.array(["ab", "abc", None])})
    exp = _exp("expect_column_value_lengths_to_be_between", {"column": "s", "max_value": 2})
    assert columnar.evaluate(exp, table, PARAMS) is None
    suite = {"name": "x", "expectations": [exp]}
    results, raw = _judge_columnar(table, suite)
    assert [r["success"] for r in results] == [False] and raw["success"] is False
    assert results[0]["result"]["unexpected_list"] == ["abc"]


def _judge_columnar(table: pa.Table, suite: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from connectbatch.pipeline.validation import batch

    return batch._judge(table, suite, PARAMS, "columnar")


def _comparable(report: Any) -> dict[str, Any]:
    data = asdict(report)
    raw = data.pop("raw")
    results = sorted(
        ({**r, "expectation_config": {**r["expectation_config"], "kwargs": {
            k: v for k, v in r["expectation_config"]["kwargs"].items() if k != "batch_id"
        }}} for r in raw["results"]),
        key=lambda r: r["expectation_config"]["id"],
    )  # fmt: skip
    return {**data, "raw_results": json.dumps(results, sort_keys=True), "raw_success": raw["success"]}


def _both(table: pa.Table, data_type: str, **kw: Any) -> None:
    ours = validate(table, data_type, now=NOW, engine="columnar", **kw)
    theirs = validate(table, data_type, now=NOW, engine="gx", **kw)
    assert _comparable(ours) == _comparable(theirs)
    assert ours.raw["meta"]["evaluator"]  # and GX was not asked: every type was known
    assert "great_expectations" not in ours.raw["meta"]


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_calls(tmp_path_factory.mktemp("parity") / "calls.csv", rows=3000, seed=7)


def test_call_conversion_suite_on_the_bench_file_gives_gx_report(bench_file: Path) -> None:
    parsed = parse_file(bench_file, "call_conversions")
    keys = record_key.texts(schemas.get("call_conversions"), parsed.table).to_pylist()[:40:3]
    # the bench file's dates are early 2026: a window that cuts through them
    for now in (datetime(2026, 2, 1, tzinfo=UTC), NOW):
        ours = validate(
            parsed.table, "call_conversions", now=now, lines=parsed.lines, already_loaded=keys,
            rows_rejected=parsed.rows_rejected, engine="columnar",
        )  # fmt: skip
        theirs = validate(
            parsed.table, "call_conversions", now=now, lines=parsed.lines, already_loaded=keys,
            rows_rejected=parsed.rows_rejected, engine="gx",
        )  # fmt: skip
        assert _comparable(ours) == _comparable(theirs)
        assert any(not o.success and o.unexpected_lines for o in ours.outcomes)
        loaded = next(o for o in ours.outcomes if ALREADY_LOADED_SUFFIX in o.columns[0])
        assert loaded.observed_value["unexpected_count"] >= len(keys)


def _synthetic(data_type: str, rows: int, seed: int) -> pa.Table:
    """A batch of the data type's own column types with nulls, out-of-set codes, repeated
    keys, negative amounts and dates around the window."""
    rng = random.Random(seed)
    dt = schemas.get(data_type)
    arrays = {}
    for col in dt.columns:
        values: list[Any] = []
        for r in range(rows):
            if rng.random() < 0.08:
                values.append(None)
            elif col.choices:
                values.append(rng.choice([*col.choices[:3], "ZZ"]) if rng.random() < 0.1 else col.choices[0])
            elif col.kind is schemas.Kind.DECIMAL:
                values.append(Decimal(rng.randint(-200, 100_000)) / 100)
            elif col.kind in (schemas.Kind.INTEGER, schemas.Kind.SECONDS):
                values.append(rng.choice([0, 5, 86_400, 86_401, rng.randint(0, 4000)]))
            elif col.kind is schemas.Kind.TIMESTAMP:
                values.append(NOW - timedelta(days=rng.uniform(-2, 95)))
            else:
                values.append(f"v{r % (rows - 3) if rows > 3 else r}")
        arrays[col.name] = pa.array(values, col.arrow_type)
    return pa.table(arrays)


@pytest.mark.parametrize("data_type", sorted(schemas.REGISTRY))
def test_every_real_suite_gives_gx_report(data_type: str) -> None:
    table = _synthetic(data_type, 400, seed=len(data_type))
    _both(table, data_type, lines=list(range(2, table.num_rows + 2)))
    _both(table.slice(0, 0), data_type)


def test_engine_setting_picks_gx_for_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONNECTBATCH_VALIDATION_ENGINE: columnar by default, gx on request, nothing else."""
    from connectbatch import settings as cb_settings
    from connectbatch.errors import ConfigurationError

    table = _synthetic("conversions", 30, seed=3)
    monkeypatch.delenv("CONNECTBATCH_VALIDATION_ENGINE", raising=False)
    assert cb_settings.validation_engine() == "columnar"
    assert "evaluator" in validate(table, "conversions", now=NOW).raw["meta"]
    monkeypatch.setenv("CONNECTBATCH_VALIDATION_ENGINE", "GX")
    assert cb_settings.validation_engine() == "gx"
    assert "great_expectations_version" in validate(table, "conversions", now=NOW).raw["meta"]
    monkeypatch.setenv("CONNECTBATCH_VALIDATION_ENGINE", "pandas")
    with pytest.raises(ConfigurationError, match="CONNECTBATCH_VALIDATION_ENGINE"):
        validate(table, "conversions", now=NOW)


def test_columnar_validation_does_not_import_gx() -> None:
    """The first ingest after start must not pay GX's import (~3 s, ~14 s with warm-up)."""
    import subprocess

    code = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from connectbatch import schemas\n"
        "from connectbatch.parser.api import parse_bytes\n"
        "from connectbatch.pipeline import ingest\n"
        "from connectbatch.pipeline.validation import validate\n"
        "now = datetime(2026, 3, 15, tzinfo=UTC)\n"
        "for key, dt in schemas.REGISTRY.items():\n"
        "    r = parse_bytes(dt.template_csv(now).encode(), key)\n"
        "    rep = validate(r.table, key, now=now, lines=r.lines)\n"
        "    assert rep.success, rep.critical_failures\n"
        "assert 'great_expectations' not in sys.modules, 'GX imported'\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "CONNECTBATCH_VALIDATION_ENGINE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_kwargs_the_evaluator_does_not_model_go_to_gx() -> None:
    """String bounds on timestamps (GX parses them with dateutil) and kwargs the evaluator
    does not know (e.g. the old parse_strings_as_datetimes) are judged by GX, not guessed."""
    table = pa.table({"ts": pa.array([LO, HI + timedelta(days=1), None], pa.timestamp("us", tz="UTC"))})
    prepared = columnar.prepare(table)
    for kwargs in (
        {"column": "ts", "max_value": HI.isoformat()},
        {"column": "ts", "max_value": WINDOW[1], "parse_strings_as_datetimes": True},
        {"column": "ts", "min_value": WINDOW[1], "max_value": WINDOW[0]},  # GX raises: min > max
    ):
        assert columnar.evaluate(_exp(BETWEEN, kwargs), prepared, PARAMS) is None, kwargs
    exp = _exp(BETWEEN, {"column": "ts", "max_value": HI.isoformat()})
    results, _ = _judge_columnar(table, {"name": "x", "expectations": [exp]})
    assert results[0]["success"] is False and results[0]["result"]["unexpected_index_list"] == [1]
