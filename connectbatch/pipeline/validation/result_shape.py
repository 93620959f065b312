"""GX's result shape for map expectations (`_format_map_output`, result_format COMPLETE),
built from the failing rows the columnar evaluator found: the counts and percentages, the
unexpected values as pandas holds them, capped as GX caps them, and GX's partial counts.
Kept apart from the checks (columnar.py) so that each reads as one concept.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

SAMPLE_SIZE = 20  # as gx.SAMPLE_SIZE (partial_unexpected_count)
MAX_ROWS = 1000  # as gx.MAX_ROWS: unexpected_index_list kept (gx.cap_lists)
GX_MAX_VALUES = 200  # great_expectations.constants.MAX_RESULT_RECORDS: values GX returns

_PLAIN = frozenset({str, int, bool, type(None)})  # exact: numpy's str_ and int64 still convert


def format_values(
    success: bool, total: int, nonnull: int | None, col: pa.Array, unexpected: np.ndarray, count: int
) -> dict[str, Any]:
    idx = np.flatnonzero(unexpected)
    return format_lists(success, total, nonnull, count, idx, values_at(col, idx))


def format_lists(
    success: bool,
    total: int,
    nonnull: int | None,
    count: int,
    idx: np.ndarray,
    keys: list[Any],
) -> dict[str, Any]:
    values = as_reported(keys)
    percent_total = count / total * 100 if total else None
    percent = percent_total if nonnull is None else (count / nonnull * 100 if total and nonnull else None)
    res: dict[str, Any] = {
        "success": bool(success),
        "element_count": total,
        "unexpected_count": count,
        "unexpected_percent": percent,
        "partial_unexpected_list": values[:SAMPLE_SIZE],
    }
    if nonnull is not None:
        res["missing_count"] = total - nonnull
        res["missing_percent"] = (total - nonnull) / total * 100 if total else None
        res["unexpected_percent_total"] = percent_total
        res["unexpected_percent_nonmissing"] = percent
    res["partial_unexpected_counts"] = counts(keys)
    res["partial_unexpected_index_list"] = [int(i) for i in idx[:SAMPLE_SIZE]]
    res["unexpected_list"] = values
    res["unexpected_index_list"] = [int(i) for i in idx[:MAX_ROWS]]
    if count > MAX_ROWS:
        res["unexpected_index_list_truncated_to"] = MAX_ROWS
    return res


class _Incomparable:
    """A key that compares False with everything, as pandas' NaN and NaT do in GX's sort.
    Hashed by identity: GX's Counter never merges two NaNs (distinct float objects) but does
    merge NaT (one object)."""

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return False


_NAT = _Incomparable()


def counts(keys: list[Any]) -> list[dict[str, Any]]:
    """partial_unexpected_counts as GX computes it: Counter.most_common(20) over the (first
    200) unexpected values it returns, then sorted by (-count, value); unorderable values
    give GX's error entry."""
    top = Counter(keys).most_common(SAMPLE_SIZE)
    try:
        ordered = sorted(top, key=lambda kv: (-kv[1], kv[0]))
    except TypeError:
        return [{"error": "partial_exception_counts requires a hashable type"}]
    return [{"value": unwrap(k), "count": c} for k, c in ordered]


def unwrap(key: Any) -> Any:
    if isinstance(key, tuple):
        return [unwrap(k) for k in key]
    if key is _NAT:
        return "NaT"
    if isinstance(key, _Incomparable):
        return None
    return jsonable(key)


def values_at(col: pa.Array, idx: np.ndarray) -> list[Any]:
    """The first 200 values at `idx` (as many as GX returns) as Python objects standing for
    pandas' (for the counts)."""
    if len(idx) == 0:
        return []
    values: list[Any] = col.take(pa.array(idx[:GX_MAX_VALUES], pa.int64())).to_pylist()
    t = col.type
    if pa.types.is_timestamp(t):
        return [_NAT if v is None else v for v in values]
    if pa.types.is_floating(t) or (pa.types.is_integer(t) and col.null_count):
        return [_Incomparable() if v is None or math.isnan(v) else float(v) for v in values]
    return values


def as_reported(keys: list[Any]) -> list[Any]:
    """The values as GX reports them after JSON conversion."""
    return [unwrap(k) for k in keys]


def jsonable(value: Any) -> Any:
    """Plain JSON types, as gx.jsonable gives them, without importing GX. A plain value, or a
    list of them (a value set of codes), is taken whole instead of element by element."""
    if type(value) in _PLAIN or (type(value) in (list, tuple) and all(type(v) in _PLAIN for v in value)):
        return list(value) if type(value) in (list, tuple) else value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
