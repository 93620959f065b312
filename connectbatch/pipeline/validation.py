"""Batch validation: great-expectations suites per data type, run on a parsed Arrow table.

    report = validate(result.table, "call_conversions", rows_rejected=result.rows_rejected,
                      already_loaded=ids_in_store)
    report.success            # False when a *critical* expectation failed -> quarantine
    report.critical_failures  # one readable line per failed critical expectation
    report.outcomes[i].unexpected_rows  # table row indexes -> result.lines[i] = file line

The suites are JSON files in `expectations/`, generated from the schema registry by
`build_suite` (plus the hand-written rules below it) through `scripts/generate_expectations.py`.
GX costs ~3 s to import, so it is imported on first use and one ephemeral context is kept per
process; importing this module (for `build_suite`, the CLI, the UI) stays cheap.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import threading
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import schemas, settings
from connectbatch.errors import ConfigurationError
from connectbatch.schemas import DataType, Kind

log = logging.getLogger(__name__)

Severity = Literal["critical", "warning"]

EXPECTATIONS_DIR = settings.expectations_dir()
REJECT_RATE_TYPE = "connectbatch_reject_rate_below"
ALREADY_LOADED_SUFFIX = "_already_loaded"  # derived column: the key where already loaded
MIN_EVENT_DATE = "min_event_date"  # suite parameters, bound at validation time
MAX_EVENT_DATE = "max_event_date"
SAMPLE_SIZE = 20
MAX_ROWS = 1000  # row indexes kept per outcome, and list length kept in the stored raw result
MAX_DURATION_SECONDS = 86_400
# Expectation ids are uuid5s of their content in this namespace: stable across regenerations.
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://connectbatch.invalid/expectations")


# --------------------------------------------------------------------------- suites


def _expectation(
    suite: str, type_: str, kwargs: dict[str, Any], severity: Severity, description: str
) -> dict[str, Any]:
    """One expectation in GX 1.x JSON form. The id is derived from the content so that a
    regenerated suite is byte-identical and results can be put back in suite order."""
    key = json.dumps([suite, type_, kwargs], sort_keys=True)
    return {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"severity": severity, "description": description},
        "severity": severity,  # GX's own field; `meta` is the contract ConnectBatch reads
        "id": str(uuid.uuid5(_ID_NAMESPACE, key)),
    }


def build_suite(data_type: str) -> dict[str, Any]:
    """The expectation suite for `data_type` as a JSON-able dict (what expectations/*.json hold).

    Derived from the registry: required columns not null, coded columns in their value sets,
    a single key column unique within the batch, amounts not negative, `EventDate` inside the
    window bound at run time; then `_hand_written` rules. Free of GX, so the generator and the
    freshness test do not pay GX's import.
    """
    dt = schemas.get(data_type)
    exps: list[dict[str, Any]] = []

    def add(type_: str, kwargs: dict[str, Any], severity: Severity, description: str) -> None:
        exps.append(_expectation(dt.key, type_, kwargs, severity, description))

    for col in dt.columns:
        if col.required:
            add(
                "expect_column_values_to_not_be_null",
                {"column": col.name},
                "critical",
                f"{col.name} is required: every row must have a value.",
            )
    coded = {
        Kind.COUNTRY: "an ISO 3166-1 alpha-2 country code",
        Kind.CURRENCY: "an ISO 4217 currency code",
    }
    for col in dt.columns:
        if col.kind in (Kind.ENUM, *coded):
            what = coded.get(col.kind) or "one of " + ", ".join(col.choices)
            add(
                "expect_column_values_to_be_in_set",
                {"column": col.name, "value_set": list(col.choices)},
                "critical",
                f"{col.name} must be {what}.",
            )
    if len(dt.key_columns) == 1:
        key = dt.key_columns[0]
        add(
            "expect_column_values_to_be_unique",
            {"column": key},
            "critical",
            f"{key} must be unique within the batch: a repeated {key} would be loaded twice.",
        )
    for col in dt.columns:
        if col.kind is Kind.DECIMAL:
            add(
                "expect_column_values_to_be_between",
                {"column": col.name, "min_value": 0},
                "critical",
                f"{col.name} must not be negative.",
            )
    if "EventDate" in dt.column_names and dt.column("EventDate").kind is Kind.TIMESTAMP:
        window = {"$PARAMETER": MIN_EVENT_DATE}, {"$PARAMETER": MAX_EVENT_DATE}
        add(
            "expect_column_values_to_be_between",
            {"column": "EventDate", "min_value": window[0], "max_value": window[1]},
            "critical",
            "EventDate must not be in the future, nor older than the accepted window "
            "(max_age_days before the time of validation).",
        )
    for type_, kwargs, severity, description in _hand_written(dt.key):
        add(type_, kwargs, severity, description)
    return {
        "name": dt.key,
        "id": str(uuid.uuid5(_ID_NAMESPACE, dt.key)),
        "expectations": exps,
        "meta": {
            "data_type": dt.key,
            "generated_by": "scripts/generate_expectations.py from connectbatch.schemas and "
            "connectbatch.pipeline.validation; edit those, not this file",
            "parameters": {
                MIN_EVENT_DATE: "time of validation minus max_age_days (UTC)",
                MAX_EVENT_DATE: "time of validation (UTC)",
            },
        },
        "notes": None,
    }


def _hand_written(
    data_type: str,
) -> list[tuple[str, dict[str, Any], Severity, str]]:
    """Rules the registry cannot express. They live here, not in the JSON, so that
    regenerating the suites keeps them."""
    if data_type != "call_conversions":
        return []
    pair = "expect_column_pair_values_a_to_be_greater_than_b"
    part_of_call: dict[str, Any] = {"or_equal": True, "ignore_row_if": "either_value_is_missing"}
    return [
        (
            pair,
            {"column_A": "CallDuration", "column_B": "TalkDuration", **part_of_call},
            "critical",
            "TalkDuration must not exceed CallDuration: talk time is part of the call.",
        ),
        (
            pair,
            {"column_A": "CallDuration", "column_B": "IvrDuration", **part_of_call},
            "warning",
            "IvrDuration should not exceed CallDuration: IVR time is part of the call.",
        ),
        *(
            (
                "expect_column_values_to_be_between",
                {"column": col, "max_value": MAX_DURATION_SECONDS},
                "warning",
                f"{col} over 86,400 seconds (a day) is suspicious.",
            )
            for col in ("CallDuration", "TalkDuration")
        ),
    ]


def suite_path(data_type: str) -> Path:
    return EXPECTATIONS_DIR / f"{schemas.get(data_type).key}.json"


_suites: dict[str, dict[str, Any]] = {}


def load_suite(data_type: str) -> dict[str, Any]:
    """The committed suite JSON for `data_type` (read once per process). Without the file (an
    installed wheel has no expectations/ folder) the generator's output is used: a unit test
    keeps the two identical."""
    suite = _suites.get(data_type)
    if suite is None:
        path = suite_path(data_type)
        try:
            suite = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            log.info("no suite file %s; using the generated suite", path)
            suite = build_suite(data_type)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the expectation suite {path}: {exc}") from exc
        _suites[data_type] = suite
    return suite


# --------------------------------------------------------------------------- report


@dataclass
class ExpectationOutcome:
    """One expectation's verdict on one batch, in the words a reviewer needs."""

    expectation_type: str
    columns: list[str]
    severity: Severity
    description: str
    success: bool
    observed_value: dict[str, Any]  # counts and percentages; min/max for range checks
    unexpected_sample: list[Any] = field(default_factory=list)  # first values, JSON-safe
    unexpected_rows: list[int] = field(default_factory=list)  # table row indexes (0-based)
    kwargs: dict[str, Any] = field(default_factory=dict)  # as evaluated (window bound)
    exception: str | None = None  # GX could not evaluate it (counted as a failure)
    expectation_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.expectation_type}({', '.join(self.columns)})"

    def summary(self) -> str:
        """One line: what was expected and what was found."""
        if self.exception:
            return f"{self.description} Could not be checked: {self.exception}"
        obs = self.observed_value
        if self.expectation_type == REJECT_RATE_TYPE:
            return (
                f"{self.description} {obs['rows_rejected']:,} of {obs['rows_total']:,} "
                f"rows rejected ({obs['reject_rate']:.2%})."
            )
        found = f"{obs.get('unexpected_count', 0):,} of {obs.get('element_count', 0):,} rows"
        if self.unexpected_sample:
            shown = ", ".join(json.dumps(v) for v in self.unexpected_sample[:5])
            found += f", e.g. {shown}"
        return f"{self.description} Found {found}."


@dataclass
class ValidationReport:
    """Everything stored per run: verdict, readable outcomes and the full GX result."""

    data_type: str
    success: bool  # no critical expectation failed
    critical_failures: list[str]
    warnings: list[str]
    outcomes: list[ExpectationOutcome]
    rows_accepted: int
    rows_rejected: int
    validated_at: str  # ISO 8601 UTC: the "now" the event-date window was computed from
    parameters: dict[str, Any]
    raw: dict[str, Any]  # GX ExpectationSuiteValidationResult.to_json_dict(), lists capped

    @property
    def reason(self) -> str:
        """Why the batch is quarantined ("" when it is not): the run's failure reason."""
        return "; ".join(self.critical_failures)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ValidationReport:
        data = json.loads(text)
        data["outcomes"] = [ExpectationOutcome(**o) for o in data["outcomes"]]
        return cls(**data)


# --------------------------------------------------------------------------- GX runtime

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


def _run_gx(df: Any, suite_json: dict[str, Any], params: dict[str, Any]) -> Any:
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


# --------------------------------------------------------------------------- validate


def validate(
    table: pa.Table,
    data_type: str,
    *,
    rows_rejected: int = 0,
    already_loaded: Iterable[str] = (),
    now: datetime | None = None,
    max_age_days: int = 90,
    max_reject_rate: float = 0.05,
) -> ValidationReport:
    """Run the data type's suite on a parsed batch and judge it.

    `already_loaded`: key values (CallSessionId for call conversions) the store already holds
    for this connection; rows repeating one fail a critical expectation. `now` (UTC; naive is
    read as UTC) anchors the EventDate window [now - max_age_days, now]. `rows_rejected` is the
    parser's count, which GX cannot see: the reject rate is judged here.
    """
    dt = schemas.get(data_type)
    if max_age_days <= 0:
        raise ConfigurationError(f"max_age_days must be positive, not {max_age_days}")
    if not 0 <= max_reject_rate <= 1:
        raise ConfigurationError(f"max_reject_rate must be between 0 and 1, not {max_reject_rate}")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    params = {MIN_EVENT_DATE: now - timedelta(days=max_age_days), MAX_EVENT_DATE: now}

    if rows_rejected < 0:
        raise ValueError(f"rows_rejected must not be negative, not {rows_rejected}")
    suite = copy.deepcopy(load_suite(dt.key))  # GX may keep or alter what it is given
    table, loaded = _already_loaded(table, dt, already_loaded)
    if loaded is not None:
        suite["expectations"].append(loaded)
    expectations: list[dict[str, Any]] = suite["expectations"]

    read = dict.fromkeys(c for e in expectations for c in _columns(e["kwargs"]))
    df = _to_pandas(table, list(read))
    result = _run_gx(df, suite, params)
    del df
    _cap_lists(result)
    order = {e["id"]: i for i, e in enumerate(expectations)}
    gx_results = sorted(result.results, key=lambda r: order.get(r.expectation_config.id, len(order)))
    outcomes = [_outcome(r, table) for r in gx_results]
    outcomes.append(_reject_rate(table.num_rows, rows_rejected, max_reject_rate))
    failed = [o for o in outcomes if not o.success]
    return ValidationReport(
        data_type=dt.key,
        success=not any(o.severity == "critical" for o in failed),
        critical_failures=[o.summary() for o in failed if o.severity == "critical"],
        warnings=[o.summary() for o in failed if o.severity == "warning"],
        outcomes=outcomes,
        rows_accepted=table.num_rows,
        rows_rejected=rows_rejected,
        validated_at=now.isoformat(),
        parameters={
            MIN_EVENT_DATE: params[MIN_EVENT_DATE].isoformat(),
            MAX_EVENT_DATE: params[MAX_EVENT_DATE].isoformat(),
            "max_age_days": max_age_days,
            "max_reject_rate": max_reject_rate,
        },
        raw=_jsonable(result.to_json_dict()),
    )


def _already_loaded(
    table: pa.Table, dt: DataType, already_loaded: Iterable[str]
) -> tuple[pa.Table, dict[str, Any] | None]:
    """The run-time "not already loaded" rule, for a data type with one key column.

    Not `expect_column_values_to_not_be_in_set`: GX copies an expectation's kwargs through
    pydantic for every metric it plans, so a value set of 100,000 ids (a re-exported file
    sent again) costs ~50 s and puts the ids into the stored result twice. Instead the
    membership test runs here in Arrow (O(rows)) and GX checks a derived column that holds
    the key where it is already loaded and null elsewhere: the failing values GX reports are
    exactly the repeated keys, with their row indexes.
    """
    if len(dt.key_columns) != 1 or dt.key_columns[0] not in table.column_names:
        return table, None
    loaded = pa.array(list(set(already_loaded)), pa.string())
    if len(loaded) == 0:
        return table, None
    key = dt.key_columns[0]
    keys = table.column(key).cast(pa.string())
    derived = pc.if_else(pc.is_in(keys, value_set=loaded), keys, pa.scalar(None, pa.string()))
    name = f"{key}{ALREADY_LOADED_SUFFIX}"
    exp = _expectation(
        dt.key,
        "expect_column_values_to_be_null",
        {"column": name},
        "critical",
        f"{key} already loaded for this connection: a re-sent record must not be loaded twice "
        f"({name} holds the {key} of such rows).",
    )
    return table.append_column(name, derived), exp


def _columns(kwargs: dict[str, Any]) -> list[str]:
    """The columns an expectation reads, in the order its kwargs name them."""
    names = (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"))
    return [c for c in (*names, *kwargs.get("column_list", ())) if c]


def _to_pandas(table: pa.Table, columns: list[str]) -> Any:
    """Only the columns the suite reads (converting all 51 would double the cost). Decimals
    become float64: pandas would give object columns of Decimal, which GX compares slowly
    and serialises badly; timestamps stay tz-aware UTC so the window compares correctly."""
    present = [c for c in columns if c in table.column_names]  # absent ones fail in GX, named
    sub = table.select(present)
    arrays = [pc.cast(col, pa.float64()) if pa.types.is_decimal(col.type) else col for col in sub.columns]
    return pa.Table.from_arrays(arrays, names=present).to_pandas()


def _cap_lists(result: Any) -> None:
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


def _outcome(r: Any, table: pa.Table) -> ExpectationOutcome:
    cfg = r.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
    meta = cfg.meta or {}
    severity: Severity = "critical" if meta.get("severity", "critical") == "critical" else "warning"
    columns = _columns(kwargs)
    res = r.result or {}
    observed = {
        k: res[k]
        for k in ("element_count", "unexpected_count", "unexpected_percent", "missing_count")
        if k in res
    }
    if "observed_value" in res:
        observed["observed_value"] = res["observed_value"]
    if cfg.type == "expect_column_values_to_be_between" and columns[0] in table.column_names:
        observed.update(pc.min_max(table.column(columns[0])).as_py() or {})
    values = res.get("unexpected_list") or res.get("partial_unexpected_list") or []
    return ExpectationOutcome(
        expectation_type=cfg.type,
        columns=columns,
        severity=severity,
        description=str(meta.get("description", cfg.type)),
        success=bool(r.success),
        observed_value=_jsonable(observed),
        unexpected_sample=_jsonable(list(values[:SAMPLE_SIZE])),
        unexpected_rows=[
            int(i)
            for i in res.get("unexpected_index_list", [])[:MAX_ROWS]
            if isinstance(i, int | np.integer)  # dicts when index columns are configured
        ],
        kwargs=_jsonable(kwargs),
        exception=_exception_message(r.exception_info),
        expectation_id=cfg.id,
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


def _reject_rate(accepted: int, rejected: int, max_rate: float) -> ExpectationOutcome:
    """The parser's rejects as an outcome like GX's, so reviewers see one list."""
    total = accepted + rejected
    rate = rejected / total if total else 0.0
    return ExpectationOutcome(
        expectation_type=REJECT_RATE_TYPE,
        columns=[],
        severity="critical",
        description=f"At most {max_rate * 100:g}% of the file's rows may be rejected by the "
        "parser; more suggests a wrong layout or a broken export.",
        success=rate <= max_rate,
        observed_value={
            "rows_accepted": accepted,
            "rows_rejected": rejected,
            "rows_total": total,
            "reject_rate": rate,
            "max_reject_rate": max_rate,
        },
        kwargs={"max_reject_rate": max_rate},
        expectation_id=REJECT_RATE_TYPE,
    )


def _jsonable(value: Any) -> Any:
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
