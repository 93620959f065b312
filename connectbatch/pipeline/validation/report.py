"""What validation returns and stores: one outcome per expectation, in a reviewer's words,
and the report of a batch (verdict, outcomes, the full GX result) that round-trips as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from connectbatch.pipeline.validation.suites import Severity

REJECT_RATE_TYPE = "connectbatch_reject_rate_below"  # the parser's rejects, judged like an expectation
LINES_SHOWN = 20  # file line numbers kept per failed expectation (unexpected_count is the total)


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
    # The file lines (1-based, as the partner's editor shows them) of the first LINES_SHOWN
    # failing rows, ascending; empty when validated without the batch's line numbers.
    # observed_value["unexpected_count"] is how many rows failed in all.
    unexpected_lines: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.expectation_type}({', '.join(self.columns)})"

    def summary(self, values: list[str] | None = None) -> str:
        """One line: what was expected and what was found. `values` are the first failing
        values as the batch holds them ("-5.00"), shown instead of the JSON sample (a decimal
        column's sample is a float, "-5.0"): the partner's summary. The failing lines, when
        known, are named either way (the run's message, the review queue)."""
        if self.exception:
            return f"{self.description} Could not be checked: {self.exception}"
        obs = self.observed_value
        if self.expectation_type == REJECT_RATE_TYPE:
            return (
                f"{self.description} {obs['rows_rejected']:,} of {obs['rows_total']:,} "
                f"rows rejected ({obs['reject_rate']:.2%})."
            )
        found = f"{obs.get('unexpected_count', 0):,} of {obs.get('element_count', 0):,} rows"
        lines = self.lines_text()  # where a reviewer (run show, the app) finds them in the file
        found += f" (line{'' if lines.isdigit() else 's'} {lines})" if lines else ""
        if values is not None:
            found += f", e.g. {', '.join(values[:5])}" if values else ""
        elif self.unexpected_sample:
            shown = ", ".join(_sampled(v) for v in self.unexpected_sample[:5])
            found += f", e.g. {shown}"
        return f"{self.description} Found {found}."

    def lines_text(self) -> str:
        """ "2, 5, 9" or "2, 5, … (first 20 of 31 rows)": where a reviewer finds the failing
        rows in the file. "" when no line is known."""
        if not self.unexpected_lines:
            return ""
        text = ", ".join(str(n) for n in self.unexpected_lines)
        total = int(self.observed_value.get("unexpected_count") or 0)
        if total > len(self.unexpected_lines):
            text += f", … (first {len(self.unexpected_lines)} of {total:,} rows)"
        return text


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
        # field by field, not `asdict`: asdict deep-copies the whole GX result first, which
        # cost ~10 ms per small file (issue 13)
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["outcomes"] = [{f.name: getattr(o, f.name) for f in fields(o)} for o in self.outcomes]
        return json.dumps(data, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ValidationReport:
        data = json.loads(text)
        data["outcomes"] = [ExpectationOutcome(**o) for o in data["outcomes"]]
        return cls(**data)


def _sampled(value: Any) -> str:
    """A sample value as JSON; a row of a rule over several columns as one text of its
    values that are not empty, in the rule's column order: "cs-1 / ev-2", or "cs-1" for a
    call sent without a VendorEventId (a partner who never sends one reads no null), as
    the already-loaded rule shows an event."""
    if isinstance(value, dict):
        value = " / ".join(str(v) for v in value.values() if v is not None)
    return json.dumps(value)
