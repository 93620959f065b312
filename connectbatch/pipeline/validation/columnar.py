"""The columnar evaluator: the suites' expectation types judged with Arrow compute, returning
what great-expectations returns for them.

Why: GX took ~1.2 s of a 1.7 s single-file ingest (and ~14 s to warm up), most of it in
planning metrics and pandas conversions, for checks that are one vectorised pass each. The
suites stay GX JSON; GX stays the reference: `tests/unit/test_validation_parity.py` runs both
on generated batches and on the bench files and requires identical results.

`evaluate` returns an ExpectationValidationResult in GX's JSON form (result_format COMPLETE,
lists capped like `gx.cap_lists`), or None when it cannot promise GX's answer (an unknown
type or kwarg, a column it does not hold, a type it does not handle): the caller then asks
GX for that expectation. Never "passed" by default.

GX semantics copied here (great_expectations 1.24, expectations/expectation.py):
- column map expectations skip nulls (NaN too): unexpected_percent = unexpected / non-null,
  success = (non-null - unexpected) / non-null >= mostly, vacuously true with no non-null
  value or no row; missing_count = rows - non-null.
- `expect_column_values_to_(not_)be_null` consider every row and report no missing_* keys.
- column pairs: rows dropped by `ignore_row_if` count as missing.
- values are reported as pandas holds them: an integer column with a null is float64,
  decimals are float64 (batch.py converts them so for GX too), a null timestamp is "NaT".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectbatch.pipeline.validation.result_shape import (
    SAMPLE_SIZE,
    format_lists,
    format_values,
    jsonable,
    unwrap,
    values_at,
)
from connectbatch.schemas import record_key

NOT_NULL = "expect_column_values_to_not_be_null"
NULL = "expect_column_values_to_be_null"
IN_SET = "expect_column_values_to_be_in_set"
UNIQUE = "expect_column_values_to_be_unique"
BETWEEN = "expect_column_values_to_be_between"
PAIR_GREATER = "expect_column_pair_values_a_to_be_greater_than_b"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
NOT_MATCH_REGEX = "expect_column_values_to_not_match_regex"

# The kwargs each type may carry for the evaluator to answer; anything else goes to GX.
_KWARGS: dict[str, frozenset[str]] = {
    NOT_NULL: frozenset({"column", "mostly"}),
    NULL: frozenset({"column", "mostly"}),
    IN_SET: frozenset({"column", "value_set", "mostly"}),
    UNIQUE: frozenset({"column", "mostly"}),
    BETWEEN: frozenset({"column", "min_value", "max_value", "strict_min", "strict_max", "mostly"}),
    PAIR_GREATER: frozenset({"column_A", "column_B", "or_equal", "ignore_row_if", "mostly"}),
    COMPOUND_UNIQUE: frozenset({"column_list", "ignore_row_if", "mostly"}),
    NOT_MATCH_REGEX: frozenset({"column", "regex", "mostly"}),
}
KNOWN_TYPES = frozenset(_KWARGS)

_NO_EXCEPTION = {"raised_exception": False, "exception_traceback": None, "exception_message": None}


class _Unsupported(Exception):
    """The evaluator cannot promise GX's answer here: GX judges this expectation."""


def prepare(table: pa.Table) -> pa.Table:
    """The batch as GX sees it through pandas: decimals as float64 (see batch._to_pandas)."""
    arrays = [pc.cast(c, pa.float64()) if pa.types.is_decimal(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(arrays, names=table.column_names)


def evaluate(exp: dict[str, Any], table: pa.Table, params: dict[str, Any]) -> dict[str, Any] | None:
    """One expectation on a `prepare`d batch, as GX's result JSON; None: ask GX."""
    type_ = exp.get("type")
    kwargs = exp.get("kwargs") or {}
    if type_ not in _KWARGS or not set(kwargs) <= _KWARGS[type_]:
        return None
    try:
        bound = {k: _bind(v, params) for k, v in kwargs.items()}
        mostly = _mostly(bound.get("mostly", 1.0))
        result = _RUNNERS[type_](table, bound, mostly)
    except _Unsupported:
        return None
    config = {
        "type": type_,
        "kwargs": _config_kwargs(type_, bound),
        "meta": dict(exp.get("meta") or {}),  # a copy: the cached suite's (flat) meta is never shared
        "id": exp.get("id"),
    }
    if "severity" in exp:
        config["severity"] = exp["severity"]
    return {
        "success": result.pop("success"),
        "expectation_config": config,
        "result": result,
        "meta": {},
        "exception_info": dict(_NO_EXCEPTION),
    }


def _bind(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"$PARAMETER"}:
        name = value["$PARAMETER"]
        if name not in params:
            raise _Unsupported(name)
        return params[name]
    return value


def _mostly(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _Unsupported("mostly")  # GX's own error message, then
    return float(value)


def _config_kwargs(type_: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs as GX's pydantic model stores them: numeric bounds become floats, bound
    datetimes ISO strings (GX's JSON form)."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if type_ == PAIR_GREATER and key == "ignore_row_if" and value == "both_values_are_missing":
            continue  # GX leaves out this one default
        if type_ == COMPOUND_UNIQUE and key == "ignore_row_if" and value == "all_values_are_missing":
            continue
        bound = type_ == BETWEEN and key in ("min_value", "max_value")
        if bound and isinstance(value, int | float) and not isinstance(value, bool):
            value = float(value)
        out[key] = jsonable(value)
    return out


# --- the checks -------------------------------------------------------------------------


def _column(table: pa.Table, name: Any) -> pa.Array:
    if not isinstance(name, str) or name not in table.column_names:
        raise _Unsupported(name)  # GX names the missing column in its exception
    chunked = table.column(name)  # one chunk as it is (combine_chunks copies even one: stream.py)
    col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
    t = col.type
    if not (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_timestamp(t)
    ):
        raise _Unsupported(str(t))
    if pa.types.is_timestamp(t) and t.tz is None:
        raise _Unsupported("naive timestamps")  # pandas compares those differently
    return col


def _nulls(col: pa.Array) -> np.ndarray:
    """pandas' isnull: null, and NaN in float columns."""
    mask = pc.is_null(col, nan_is_null=True) if pa.types.is_floating(col.type) else pc.is_null(col)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _not_null(table: pa.Table, kw: dict[str, Any], mostly: float) -> dict[str, Any]:
    col = _column(table, kw["column"])
    return _everyrow(col, _nulls(col), mostly)


def _null(table: pa.Table, kw: dict[str, Any], mostly: float) -> dict[str, Any]:
    col = _column(table, kw["column"])
    return _everyrow(col, ~_nulls(col), mostly)


def _everyrow(col: pa.Array, unexpected: np.ndarray, mostly: float) -> dict[str, Any]:
    """(not_)be_null: every row is considered; no missing_* keys (GX passes no non-null count)."""
    total = len(col)
    count = int(unexpected.sum())
    success = True if total == 0 else (total - count) / total >= mostly
    return format_values(success, total, None, col, unexpected, count)


def _in_set(table: pa.Table, kw: dict[str, Any], mostly: float) -> dict[str, Any]:
    col = _column(table, kw["column"])
    values = kw.get("value_set")
    if not isinstance(values, list) or not pa.types.is_string(col.type):
        raise _Unsupported("value_set")
    if not all(isinstance(v, str) for v in values):
        raise _Unsupported("value_set")
    nulls = _nulls(col)
    inside = pc.is_in(col, value_set=pa.array(values, pa.string())).to_numpy(zero_copy_only=False)
    return _skipnull(col, nulls, ~nulls & ~np.asarray(inside, dtype=bool), mostly)


def _not_match_regex(table: pa.Table, kw: dict[str, Any], mostly: float) -> dict[str, Any]:
    """GX (pandas): a value is unexpected where `re.search(regex)` finds it. RE2 (Arrow)
    searches alike for the suites' patterns, except that Python's `$` also matches before a
    final newline: a column holding a newline is left to GX."""
    col = _column(table, kw["column"])
    regex = kw.get("regex")
    if not isinstance(regex, str) or not pa.types.is_string(col.type):
        raise _Unsupported("regex")
    if pc.any(pc.match_substring(col, "\n")).as_py():
        raise _Unsupported("a newline in the column")
    nulls = _nulls(col)
    found = pc.fill_null(pc.match_substring_regex(col, regex), False).to_numpy(zero_copy_only=False)
    return _skipnull(col, nulls, ~nulls & np.asarray(found, dtype=bool), mostly)


def _unique(table: pa.Table, kw: dict[str, Any], mostly: float) -> dict[str, Any]:
    col = _column(table, kw["column"])
    if pa.types.is_floating(col.type):
        raise _Unsupported("float uniqueness")  # -0.0/0.0 and NaN: pandas' hashing rules
    return _skipnull(col, _nulls(col), _repeated(col), mostly)


def _repeated(col: pa.Array) -> np.ndarray:
    """Where a non-null value occurs more than once."""
    unexpected = np.zeros(len(col), dtype=bool)
    # every value once (the usual key column): unique() says so at half dictionary_encode's
    # cost (0.13 vs 0.25 s for a million ids, issue 13); only repeats need the counts
    if len(col) > col.null_count and len(pc.unique(col).drop_null()) < len(col) - col.null_count:
        encoded = pc.dictionary_encode(col)
        codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        counts = np.bincount(codes[codes >= 0], minlength=len(encoded.dictionary))
        unexpected = (codes >= 0) & (counts[np.maximum(codes, 0)] > 1)
    return unexpected


def _between(table: pa.Table, kw: dict[str, Any], mostly: float) -> dict[str, Any]:
    col = _column(table, kw["column"])
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is None and hi is None:
        raise _Unsupported("no bound")  # GX raises; let it say so
    strict_lo, strict_hi = bool(kw.get("strict_min", False)), bool(kw.get("strict_max", False))
    lo_s, hi_s = _bound(col, lo), _bound(col, hi)
    if lo is not None and hi is not None and lo > hi:
        raise _Unsupported("min > max")
    nulls = _nulls(col)
    ok = pa.array(np.ones(len(col), dtype=bool))
    if lo_s is not None:
        ok = pc.and_(ok, pc.greater(col, lo_s) if strict_lo else pc.greater_equal(col, lo_s))
    if hi_s is not None:
        ok = pc.and_(ok, pc.less(col, hi_s) if strict_hi else pc.less_equal(col, hi_s))
    inside = np.asarray(ok.fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
    return _skipnull(col, nulls, ~nulls & ~inside, mostly)


def _bound(col: pa.Array, value: Any) -> pa.Scalar | None:
    if value is None:
        return None
    if pa.types.is_timestamp(col.type):
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise _Unsupported("timestamp bound")  # strings are parsed by GX's dateutil
        return pa.scalar(value.astimezone(dt.UTC), col.type)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type))
    ):
        raise _Unsupported("bound")
    return pa.scalar(float(value), pa.float64())


def _pair_greater(table: pa.Table, kw: dict[str, Any], mostly: float) -> dict[str, Any]:
    a, b = _column(table, kw["column_A"]), _column(table, kw["column_B"])
    numeric = [pa.types.is_integer(c.type) or pa.types.is_floating(c.type) for c in (a, b)]
    if not (all(numeric) or (pa.types.is_timestamp(a.type) and pa.types.is_timestamp(b.type))):
        raise _Unsupported("pair types")
    ignore = kw.get("ignore_row_if", "both_values_are_missing")
    na, nb = _nulls(a), _nulls(b)
    if ignore == "either_value_is_missing":
        dropped = na | nb
    elif ignore == "both_values_are_missing":
        dropped = na & nb
    elif ignore == "neither":
        dropped = np.zeros(len(a), dtype=bool)
    else:
        raise _Unsupported(str(ignore))
    a_cmp, b_cmp = (pc.cast(a, pa.float64()), pc.cast(b, pa.float64())) if all(numeric) else (a, b)
    greater = pc.greater_equal(a_cmp, b_cmp) if kw.get("or_equal") else pc.greater(a_cmp, b_cmp)
    ok = np.asarray(greater.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    unexpected = ~dropped & ~ok
    total, considered = len(a), int((~dropped).sum())
    count = int(unexpected.sum())
    success = True if total == 0 or considered == 0 else (considered - count) / considered >= mostly
    idx = np.flatnonzero(unexpected)
    keys = list(zip(values_at(a, idx), values_at(b, idx), strict=True))
    return format_lists(success, total, considered, count, idx, keys)


def _compound_unique(table: pa.Table, kw: dict[str, Any], mostly: float) -> dict[str, Any]:
    """GX's multicolumn map: rows dropped by `ignore_row_if` count as missing; a kept row is
    unexpected when another kept row has the same values (pandas' duplicated(keep=False),
    where two nulls are equal); values are reported as one {column: value} dict a row."""
    names = kw.get("column_list")
    if not isinstance(names, list) or len(names) < 2 or len(set(map(str, names))) != len(names):
        raise _Unsupported("column_list")
    cols = [_column(table, name) for name in names]
    if not all(pa.types.is_string(c.type) for c in cols):
        raise _Unsupported("compound types")  # numbers: pandas' float and NaN hashing rules
    nulls = np.vstack([_nulls(c) for c in cols])
    ignore = kw.get("ignore_row_if", "all_values_are_missing")
    if ignore == "all_values_are_missing":
        dropped = nulls.all(axis=0)
    elif ignore == "any_value_is_missing":
        dropped = nulls.any(axis=0)
    elif ignore == "never":
        dropped = np.zeros(len(cols[0]), dtype=bool)
    else:
        raise _Unsupported(str(ignore))
    if cols[0].null_count == 0 and not _repeated(cols[0]).any():
        unexpected = np.zeros(len(cols[0]), dtype=bool)  # the first column tells every row apart
    else:
        unexpected = _repeated(pc.if_else(pa.array(dropped), pa.scalar(None, pa.string()), _row_text(cols)))
    total, considered = len(cols[0]), int((~dropped).sum())
    count = int(unexpected.sum())
    idx = np.flatnonzero(unexpected)
    values = list(zip(*(values_at(c, idx) for c in cols), strict=True))
    res = format_lists(_met(total, considered, count, mostly), total, considered, count, idx, values)
    if res["partial_unexpected_counts"] and "error" in res["partial_unexpected_counts"][0]:
        del res["partial_unexpected_counts"]  # GX's TypeError path for row values keeps none
    rows = [dict(zip(names, (unwrap(v) for v in row), strict=True)) for row in values]
    res["partial_unexpected_list"] = rows[:SAMPLE_SIZE]
    res["unexpected_list"] = rows
    return res


def _row_text(cols: list[pa.Array]) -> pa.Array:
    """One text a row that two rows share exactly when all their values are equal, a null
    equal only to a null: each value escaped so it holds no separator, marked null or not."""
    parts = []
    for col in cols:
        parts.append(pc.fill_null(pc.binary_join_element_wise("v", record_key.escape(col), ""), "n"))
    return pc.binary_join_element_wise(*parts, record_key.SEPARATOR)


def _skipnull(col: pa.Array, nulls: np.ndarray, unexpected: np.ndarray, mostly: float) -> dict[str, Any]:
    total = len(col)
    nonnull = total - int(nulls.sum())
    count = int(unexpected.sum())
    return format_values(_met(total, nonnull, count, mostly), total, nonnull, col, unexpected, count)


def _met(total: int, considered: int, count: int, mostly: float) -> bool:
    """GX's success of a map expectation that skips missing rows: vacuously true with no
    row, no row considered or nothing unexpected; else the considered share at `mostly`."""
    return (
        True if total == 0 or considered == 0 or count == 0 else (considered - count) / considered >= mostly
    )


_RUNNERS: dict[str, Callable[[pa.Table, dict[str, Any], float], dict[str, Any]]] = {
    NOT_NULL: _not_null,
    NULL: _null,
    IN_SET: _in_set,
    UNIQUE: _unique,
    BETWEEN: _between,
    PAIR_GREATER: _pair_greater,
    COMPOUND_UNIQUE: _compound_unique,
    NOT_MATCH_REGEX: _not_match_regex,
}
