"""The great-expectations runtime: one ephemeral context per process, one validation of a
pandas frame, and the conversion of GX's results into `ExpectationOutcome`s.

GX costs ~3 s to import, so it is imported on first use only.
"""

from __future__ import annotations

import math
import threading
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import settings
from connectbatch.pipeline.validation import result_shape
from connectbatch.pipeline.validation.report import ExpectationOutcome
from connectbatch.pipeline.validation.suites import Severity, columns

SAMPLE_SIZE = result_shape.SAMPLE_SIZE
MAX_ROWS = (
    result_shape.MAX_ROWS
)  # row indexes kept per outcome, and list length kept in the stored raw result

_gx_lock = threading.RLock()
_gx_context: Any = None


def gx_context() -> Any:
    """The process's ephemeral GX context, created on first use (importing GX takes ~3 s;
    call this early in a long-running process to pay it before the first file arrives)."""
    global _gx_context
    with _gx_lock:
        if _gx_context is None:
            _gx_context = _create_context()
        return _gx_context


def _create_context() -> Any:
    # GX 1.24 has no telemetry left, but older 1.x read this before any network use.
    settings.quiet_third_party_telemetry()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch under 1 GB with an md5 of hash_pandas_object: 1.3 s
    # per get_batch at 1M rows, done twice per validation, and used for nothing we read
    # (batches are identified by the file's sha256). A threshold of 0 skips it.
    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_gx(df: Any, suite_json: dict[str, Any], params: dict[str, Any]) -> Any:
    """Validate one DataFrame. A fresh pandas datasource per call: its execution engine keeps
    a metric cache and the last batch alive, so sharing one would hold a 1M-row frame and its
    unexpected lists between runs. The lock serialises GX, whose context and suite-parameter
    parser are process-global and not thread-safe."""
    import great_expectations as gx

    result_format = {
        "result_format": "COMPLETE",
        "partial_unexpected_count": SAMPLE_SIZE,
        "return_unexpected_index_query": False,  # a pandas expression listing every index
    }
    with _gx_lock:
        context = gx_context()
        name = f"connectbatch-{uuid.uuid4().hex}"
        source = context.data_sources.add_pandas(name)
        try:
            batch_def = source.add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole")
            suite = gx.ExpectationSuite(**suite_json)
            batch = batch_def.get_batch(batch_parameters={"dataframe": df})
            return batch.validate(suite, result_format=result_format, expectation_parameters=params)
        finally:
            context.data_sources.delete(name)


def cap_lists(result: Any) -> None:
    """Keep the first MAX_ROWS unexpected values and indexes of each expectation. COMPLETE
    lists every failing row: a stale 1M-row batch would store ~16 MB of timestamps and take
    3 s to serialise, while counts and percentages already describe the whole batch."""
    for r in result.results:
        res = r.result or {}
        for key in ("unexpected_list", "unexpected_index_list"):
            values = res.get(key)
            if isinstance(values, list) and len(values) > MAX_ROWS:
                res[key] = values[:MAX_ROWS]
                res[f"{key}_truncated_to"] = MAX_ROWS


def outcome(r: dict[str, Any], table: pa.Table) -> ExpectationOutcome:
    """One result in GX's JSON form (from GX or from the columnar evaluator) as an outcome."""
    cfg = r.get("expectation_config") or {}
    kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
    meta = cfg.get("meta") or {}
    severity: Severity = "critical" if meta.get("severity", "critical") == "critical" else "warning"
    read = columns(kwargs)
    type_ = str(cfg.get("type"))
    res = r.get("result") or {}
    observed = {
        k: res[k]
        for k in ("element_count", "unexpected_count", "unexpected_percent", "missing_count")
        if k in res
    }
    if "observed_value" in res:
        observed["observed_value"] = res["observed_value"]
    if type_ == "expect_column_values_to_be_between" and read[0] in table.column_names:
        observed.update(pc.min_max(table.column(read[0])).as_py() or {})
    values = res.get("unexpected_list") or res.get("partial_unexpected_list") or []
    return ExpectationOutcome(
        expectation_type=type_,
        columns=read,
        severity=severity,
        description=str(meta.get("description", type_)),
        success=bool(r.get("success")),
        observed_value=result_shape.jsonable(observed),
        unexpected_sample=result_shape.jsonable(list(values[:SAMPLE_SIZE])),
        unexpected_rows=[
            int(i)
            for i in res.get("unexpected_index_list", [])[:MAX_ROWS]
            if isinstance(i, int | np.integer)  # dicts when index columns are configured
        ],
        kwargs=result_shape.jsonable(kwargs),
        exception=_exception_message(r.get("exception_info")),
        expectation_id=cfg.get("id"),
    )


def _exception_message(info: Any) -> str | None:
    """GX reports an exception flat ({raised_exception, exception_message}) or per metric
    ({metric id: {...}}); either way the first message, if one was raised."""
    if not isinstance(info, dict):
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error")
    return None


def jsonable(value: Any) -> Any:
    """Plain JSON types only (timestamps as ISO strings, numpy scalars as Python numbers,
    tuples as lists, NaN as null), so a report equals itself after a JSON round trip."""
    from great_expectations.util import convert_to_json_serializable

    return _no_nan(convert_to_json_serializable(value))


def _no_nan(value: Any) -> Any:
    if isinstance(value, np.generic):  # GX leaves numpy scalars inside tuples alone
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value
