"""Judging one parsed batch: its data type's suite through GX, the run-time "already loaded"
rule, and the parser's reject rate, folded into one `ValidationReport`."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import schemas, settings
from connectbatch.errors import ConfigurationError
from connectbatch.pipeline.validation import columnar, gx
from connectbatch.pipeline.validation.report import (
    LINES_SHOWN,
    REJECT_RATE_TYPE,
    ExpectationOutcome,
    ValidationReport,
)
from connectbatch.pipeline.validation.suites import (
    MAX_AGE_DAYS,
    MAX_EVENT_DATE,
    MIN_EVENT_DATE,
    columns,
    expectation,
    load_suite,
)
from connectbatch.schemas import DataType, record_key

ALREADY_LOADED_SUFFIX = "_already_loaded"  # derived column: the key where already loaded
# How far past our clock an EventDate may be: a partner's clock a minute ahead (a call that
# just ended, sent at once) held the whole batch for a reviewer as "in the future".
CLOCK_SKEW = timedelta(minutes=5)


def validate(
    table: pa.Table,
    data_type: str,
    *,
    rows_rejected: int = 0,
    already_loaded: Iterable[str] = (),
    now: datetime | None = None,
    max_age_days: int = 90,
    max_reject_rate: float = 0.05,
    lines: pa.Array | pa.ChunkedArray | Sequence[int] | None = None,
    engine: str | None = None,
) -> ValidationReport:
    """Run the data type's suite on a parsed batch and judge it.

    `already_loaded`: identity texts of records (`schemas.record_key.texts`: the CallSessionId,
    with its VendorEventId when it has one) the store already holds for this connection; rows
    repeating one fail a critical expectation. `now` (UTC; naive is read as UTC) anchors the
    EventDate window [now - max_age_days, now + CLOCK_SKEW]. `rows_rejected` is the parser's
    count (of lines), which GX cannot see: the reject rate is judged here. `lines` (the
    parse result's `lines`: the file line each table row started on) turns GX's failing
    row indexes into file line numbers in each outcome's `unexpected_lines`. `engine`
    ("columnar" or "gx"; default CONNECTBATCH_VALIDATION_ENGINE) picks who judges the
    expectation types the columnar evaluator knows; GX judges the others either way.
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
    params = {MIN_EVENT_DATE: now - timedelta(days=max_age_days), MAX_EVENT_DATE: now + CLOCK_SKEW}

    if rows_rejected < 0:
        raise ValueError(f"rows_rejected must not be negative, not {rows_rejected}")
    # The cached suite is shared: its expectations list is copied (the run-time rule is
    # appended to it), and the whole suite is deep-copied only when handed to GX, which may
    # keep or alter what it is given. The columnar evaluator only reads it (a deep copy a
    # file cost ~1 ms).
    cached = load_suite(dt.key)
    suite = {**cached, "expectations": list(cached["expectations"])}
    table, loaded = _already_loaded(table, dt, already_loaded)
    if loaded is not None:
        suite["expectations"].append(loaded)
    expectations: list[dict[str, Any]] = suite["expectations"]

    read = dict.fromkeys(c for e in expectations for c in columns(e["kwargs"]))
    present = [c for c in read if c in table.column_names]  # absent ones fail in GX, named
    results, raw = _judge(table.select(present), suite, params, engine or settings.validation_engine())
    outcomes = [gx.outcome(r, table) for r in results]
    for o in outcomes:
        o.description = o.description.replace(MAX_AGE_DAYS, f"{max_age_days:,}")
    if lines is not None:
        _add_lines(outcomes, lines, table.num_rows)
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
        raw=raw,
    )


def _judge(
    sub: pa.Table, suite: dict[str, Any], params: dict[str, Any], engine: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every expectation's result in GX's JSON form, in suite order, and the raw result.

    The columnar evaluator answers what it can; GX (imported only then) answers the rest,
    so a type or kwarg the evaluator does not know is judged by GX, never passed. With
    engine "gx" the raw result is GX's own, as before the evaluator existed.
    """
    if engine not in ("columnar", "gx"):
        raise ConfigurationError(f"validation engine must be columnar or gx, not {engine!r}")
    expectations: list[dict[str, Any]] = suite["expectations"]
    by_id: dict[str, dict[str, Any]] = {}
    pending = expectations
    if engine == "columnar":
        prepared = columnar.prepare(sub)
        pending = []
        for e, r in zip(expectations, _evaluated(expectations, prepared, params), strict=True):
            if r is None:
                pending.append(e)
            else:
                by_id[str(e["id"])] = r
    gx_raw: dict[str, Any] | None = None
    extra: list[dict[str, Any]] = []
    if pending:
        df = _to_pandas(sub, list(sub.column_names))
        result = gx.run_gx(df, copy.deepcopy({**suite, "expectations": pending}), params)
        del df
        gx.cap_lists(result)
        gx_raw = gx.jsonable(result.to_json_dict())
        for r in gx_raw["results"]:
            rid = (r.get("expectation_config") or {}).get("id")
            if rid is not None and rid not in by_id:
                by_id[str(rid)] = r
            else:
                extra.append(r)
    ordered = [by_id[str(e["id"])] for e in expectations if str(e["id"]) in by_id] + extra
    if engine == "gx" and gx_raw is not None:
        return ordered, gx_raw
    return ordered, _raw(suite, ordered, params, gx_raw)


# A batch of this many rows or more has its expectations judged on several threads.
PARALLEL_MIN_ROWS = 50_000


def _evaluated(
    expectations: list[dict[str, Any]], prepared: pa.Table, params: dict[str, Any]
) -> list[dict[str, Any] | None]:
    """`columnar.evaluate` of each expectation, in suite order.

    A big batch's expectations are judged on the parse's threads at once: each is a pure
    function of the batch, and Arrow's kernels and numpy release the GIL, so one
    expectation's pass runs beside another's. On one core this stage left the other idle for
    ~0.55 s of a 1M-row ingest (issue 13); a thread takes the next expectation as soon as it
    is free, so the longest one (the compound-key check) bounds the wait."""
    threads = min(settings.parse_threads(), len(expectations))
    if prepared.num_rows < PARALLEL_MIN_ROWS or threads < 2:
        return [columnar.evaluate(e, prepared, params) for e in expectations]
    with ThreadPoolExecutor(threads, thread_name_prefix="validate") as pool:
        return list(pool.map(lambda e: columnar.evaluate(e, prepared, params), expectations))


def _raw(
    suite: dict[str, Any],
    results: list[dict[str, Any]],
    params: dict[str, Any],
    gx_raw: dict[str, Any] | None,
) -> dict[str, Any]:
    """The stored raw result in GX's ExpectationSuiteValidationResult JSON shape."""
    ok = sum(1 for r in results if r.get("success"))
    meta: dict[str, Any] = {"evaluator": "connectbatch columnar (GX-compatible)"}
    if gx_raw is not None:
        meta["great_expectations"] = gx_raw.get("meta")
    return {
        "success": ok == len(results),
        "results": results,
        "suite_name": suite.get("name"),
        "suite_parameters": gx_raw.get("suite_parameters", {}) if gx_raw is not None else {},
        "statistics": {
            "evaluated_expectations": len(results),
            "successful_expectations": ok,
            "unsuccessful_expectations": len(results) - ok,
            "success_percent": ok / len(results) * 100 if results else None,
        },
        "meta": meta,
        "id": None,
    }


def _already_loaded(
    table: pa.Table, dt: DataType, already_loaded: Iterable[str]
) -> tuple[pa.Table, dict[str, Any] | None]:
    """The run-time "not already loaded" rule: `already_loaded` holds identity texts
    (schemas.record_key); the failing values shown are the rows' keys ("C-1 / T-2").

    Not `expect_column_values_to_not_be_in_set`: GX copies an expectation's kwargs through
    pydantic for every metric it plans, so a value set of 100,000 ids (a re-exported file
    sent again) costs ~50 s and puts the ids into the stored result twice. Instead the
    membership test runs here in Arrow (O(rows)) and GX checks a derived column that holds
    the key where it is already loaded and null elsewhere: the failing values GX reports are
    exactly the repeated keys, with their row indexes.
    """
    if not dt.key_columns or not set(dt.key_columns) <= set(table.column_names):
        return table, None
    loaded = pa.array(list(set(already_loaded)), pa.string())
    if len(loaded) == 0:
        return table, None
    key = dt.key_columns[0]
    shown = record_key.shown(dt, table)
    found = pc.is_in(record_key.texts(dt, table), value_set=loaded)
    derived = pc.if_else(found, shown, pa.scalar(None, pa.string()))
    name = f"{key}{ALREADY_LOADED_SUFFIX}"
    exp = expectation(
        dt.key,
        "expect_column_values_to_be_null",
        {"column": name},
        "critical",
        # Partners read this in their results file: it names no helper column of ours.
        f"{record_key.described(dt)} already loaded for this connection: a re-sent record "
        "must not be loaded twice.",
    )
    return table.append_column(name, derived), exp


def _add_lines(
    outcomes: list[ExpectationOutcome], lines: pa.Array | pa.ChunkedArray | Sequence[int], rows: int
) -> None:
    """GX and the evaluator (result_format COMPLETE, pandas RangeIndex) report failing rows
    as 0-based positions in `unexpected_index_list` for column and column-pair expectations;
    the batch's `lines` array maps a position to the line the partner can open the file at.
    Only the shown positions are looked up: a 1M-row `lines` is not turned into a list."""
    if not isinstance(lines, pa.Array | pa.ChunkedArray):
        lines = pa.array(list(lines), pa.int64())
    if len(lines) != rows:
        raise ValueError(f"lines has {len(lines)} entries for a batch of {rows} rows")
    for o in outcomes:
        if not o.success and o.unexpected_rows:
            shown = pa.array(sorted(o.unexpected_rows)[:LINES_SHOWN], pa.int64())
            o.unexpected_lines = [int(n) for n in lines.take(shown).to_pylist()]


def _to_pandas(table: pa.Table, names: list[str]) -> Any:
    """Only the columns the suite reads (converting all 51 would double the cost). Decimals
    become float64: pandas would give object columns of Decimal, which GX compares slowly
    and serialises badly; timestamps stay tz-aware UTC so the window compares correctly."""
    present = [c for c in names if c in table.column_names]
    sub = table.select(present)
    arrays = [pc.cast(col, pa.float64()) if pa.types.is_decimal(col.type) else col for col in sub.columns]
    return pa.Table.from_arrays(arrays, names=present).to_pandas()


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
