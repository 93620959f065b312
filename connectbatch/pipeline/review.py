"""What a data-quality reviewer reads: a run's place in the review queue and each
expectation's outcome in words ("3 of 1,200 rows (0.25 %)"), not GX's JSON.

Plain functions of stored values, so the Validation page, the dry run and the CLI word
things the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from connectbatch import schemas
from connectbatch.models import Run
from connectbatch.pipeline.validation import (
    ALREADY_LOADED_SUFFIX,
    MAX_EVENT_DATE,
    MIN_EVENT_DATE,
    REJECT_RATE_TYPE,
    ExpectationOutcome,
    ValidationReport,
)
from connectbatch.schemas import record_key

# The queue's order, most urgent first; store/reviews.py ranks runs with the same numbers.
AWAITING_REVIEW, CRITICAL, WARNINGS, FAILED, CLEAN, NOT_VALIDATED = range(6)
VERDICTS = {
    AWAITING_REVIEW: "Quarantined: awaiting review",
    CRITICAL: "Critical failures",
    WARNINGS: "Warnings",
    FAILED: "Failed before validation",
    CLEAN: "Clean",
    NOT_VALIDATED: "Not validated",
}
SAMPLE_SHOWN = 5
VALUE_WIDTH = 40


@dataclass
class RunReview:
    """One run as the review queue lists it. Row counts add up the run's files, so a
    quarantined batch shows the rows it holds back."""

    run: Run
    connection: str
    data_type: str | None
    critical: int  # failed critical expectations, over the run's files
    warnings: int  # failed warning expectations
    files_validated: int
    rows_accepted: int
    rows_rejected: int
    rank: int
    partner: str | None = None  # the connection's partner (None: deleted connection)
    # A quarantined batch's lock deadline: the earliest lock time of the rows it holds (None:
    # not held, or nothing of it locks). Released after it, those actions are created LOCKED.
    lock_deadline: dt.datetime | None = None

    @property
    def verdict(self) -> str:
        return VERDICTS[self.rank]

    @property
    def review_state(self) -> str:
        """quarantined / released / discarded, or "" for a run nobody needs to review."""
        return self.run.review or ""


def _number(value: Any) -> str:
    if isinstance(value, dict):  # a rule over several columns reports a row: "cs-1 / ev-2"
        return " / ".join(_number(v) for v in value.values() if v is not None) or "(empty)"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, str):
        try:  # timestamps arrive as ISO strings
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if when.tzinfo is not None and when.utcoffset() == dt.timedelta(0):
            return when.strftime("%Y-%m-%d %H:%M:%S UTC")
        return when.isoformat(sep=" ")
    return json.dumps(value, default=str)


def _percent(part: int, whole: int) -> str:
    return f"{part / whole * 100:.2f} %" if whole else "0.00 %"


def observed(outcome: ExpectationOutcome) -> str:
    """What the expectation found, in one line: counts, share, empties, min/max."""
    if outcome.exception:
        return f"could not be checked: {outcome.exception}"
    obs = outcome.observed_value
    if outcome.expectation_type == REJECT_RATE_TYPE:
        rejected, total = int(obs.get("rows_rejected", 0)), int(obs.get("rows_total", 0))
        limit = float(obs.get("max_reject_rate", 0)) * 100
        share = _percent(rejected, total)
        return f"{rejected:,} of {total:,} rows rejected by the parser ({share}; limit {limit:g} %)"
    parts = []
    if "unexpected_count" in obs and "element_count" in obs:
        bad, total = int(obs["unexpected_count"] or 0), int(obs["element_count"] or 0)
        parts.append(f"{bad:,} of {total:,} rows ({_percent(bad, total)})")
    missing = int(obs.get("missing_count") or 0)
    if missing:
        parts.append(f"{missing:,} empty (not checked)")
    if obs.get("min") is not None or obs.get("max") is not None:
        parts.append(f"min {_number(obs.get('min'))}, max {_number(obs.get('max'))}")
    if "observed_value" in obs:
        parts.append(f"observed {_number(obs['observed_value'])}")
    return "; ".join(parts)


def sample(outcome: ExpectationOutcome, shown: int = SAMPLE_SHOWN) -> str:
    """The first unexpected values, each cut to a readable width."""
    values = [_cut(_number(v) if v is not None else "(empty)") for v in outcome.unexpected_sample]
    text = ", ".join(values[:shown])
    if len(values) > shown:
        text += f", … ({len(values) - shown} more in the sample)"
    return text


def _cut(text: str) -> str:
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def result_label(outcome: ExpectationOutcome) -> str:
    if outcome.success:
        return "✅ Passed"
    return "❌ Failed" if outcome.severity == "critical" else "⚠️ Warning"


def outcome_rows(report: ValidationReport) -> list[dict[str, str]]:
    """One table row per expectation: failed critical ones first, then warnings, then the
    passed ones, each group in suite order."""

    def order(pair: tuple[int, ExpectationOutcome]) -> tuple[int, int]:
        i, o = pair
        return (2 if o.success else 0 if o.severity == "critical" else 1), i

    return [
        {
            "Result": result_label(o),
            "Severity": o.severity.capitalize(),
            "Expectation": o.description,
            "Columns": ", ".join(_column_label(c, report.data_type) for c in o.columns),
            "Observed": observed(o),
            "Unexpected values (sample)": sample(o),
            "Lines": o.lines_text(),
        }
        for _, o in sorted(enumerate(report.outcomes), key=order)
    ]


def _column_label(column: str, data_type: str) -> str:
    """A column as the rule is about it: the "already loaded" rule's derived column is the
    record's identity ("CallSessionId with VendorEventId": an event of a call, not the call)."""
    if not column.endswith(ALREADY_LOADED_SUFFIX) or data_type not in schemas.REGISTRY:
        return column
    return record_key.described(schemas.get(data_type))


def conditions(report: ValidationReport) -> str:
    """When and against which bounds the batch was judged."""
    params = report.parameters
    parts = [f"Validated {_number(report.validated_at)}"]
    if MIN_EVENT_DATE in params and MAX_EVENT_DATE in params:
        window = f"{_number(params[MIN_EVENT_DATE])} to {_number(params[MAX_EVENT_DATE])}"
        parts.append(f"EventDate accepted from {window}")
    if "max_reject_rate" in params:
        parts.append(f"at most {float(params['max_reject_rate']) * 100:g} % of rows may be rejected")
    return "; ".join(parts) + "."


def headline(report: ValidationReport) -> str:
    """The verdict in one sentence."""
    failed = [o for o in report.outcomes if not o.success]
    critical = sum(o.severity == "critical" for o in failed)
    warnings = len(failed) - critical
    checked = (
        f"{_counted(len(report.outcomes), 'expectation')} checked on {_counted(report.rows_accepted, 'row')}"
    )
    if critical:
        return f"{critical} critical and {_counted(warnings, 'warning expectation')} failed ({checked})."
    if warnings:
        return f"No critical failures; {_counted(warnings, 'warning expectation')} failed ({checked})."
    return f"Every expectation passed ({checked})."


def _counted(count: int, noun: str) -> str:
    """`count` `noun`s, the noun singular for one (a one-row batch read "checked on 1 rows")."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
