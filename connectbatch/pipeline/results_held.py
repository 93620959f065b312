"""Why each row of a batch held for review is held, as its results file says it.

A partner reading a quarantined batch's results file must find the rows to correct: the
rows an expectation failed on carry that expectation's reason and their own value; every
other row says it waits for the batch, naming the lines that failed. Values are shown as the
batch holds them (a decimal amount `-5.00`), not as the float the validation sample carries
(GX's sample of a decimal column is a float, `-5.0`).

The evaluator reports a failing row by its position in the batch (`unexpected_rows`, capped
at result_shape.MAX_ROWS per expectation); `lines` turns a position into the file line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from connectbatch.pipeline.validation.report import LINES_SHOWN

if TYPE_CHECKING:
    from connectbatch.pipeline.results import Summary
    from connectbatch.pipeline.validation import ExpectationOutcome, ValidationReport

HELD = "held for review"
EXAMPLES = 5  # failing values the summary shows per expectation
VALUE_CHARS = 60  # a value shown in a reason is cut to this length, like a reject's


@dataclass
class HeldReasons:
    """The Reason of each row of a held batch, and what the summary says about the hold."""

    batch: str  # the Reason of a row that failed nothing itself
    by_line: dict[int, str] = field(default_factory=dict)  # file line -> Reason of a failing row
    failures: list[dict[str, Any]] = field(default_factory=list)  # per failed expectation, JSON-safe
    texts: list[str] = field(default_factory=list)  # critical_failures, values as the batch holds them

    def describe(self, summary: Summary, report: ValidationReport | None) -> None:
        """Put the failing lines and values in the summary of the held file: its
        critical_failures (and the hold's message made of them) name the lines and show the
        amounts as the batch holds them ("-5.00", not the sample's float "-5.0")."""
        if report is None or not self.texts:
            return
        summary.validation.update(critical_failures=self.texts, failures=self.failures)
        if summary.message == f"quarantined: {report.reason}":  # as quarantine.hold words it
            summary.message = "quarantined: " + "; ".join(self.texts)


def held_reasons(
    report: ValidationReport | None,
    table: pa.Table | None,
    lines: pa.Array | None,
    names: dict[str, str],
    fallback: str,
) -> HeldReasons:
    """The reasons of a batch `report` held, over its rows `table` at file lines `lines`;
    `names` are the partner's header names of our columns, `fallback` the reason when no
    report is known (the hold's message)."""
    if report is None or report.success:
        return HeldReasons(f"{HELD}: {fallback}" if fallback else HELD)
    failed = [o for o in report.outcomes if not o.success and o.severity == "critical"]
    rows = [_failing_lines(o, table, lines) for o in failed]
    batch = [_batch_text(o, r) for o, r in zip(failed, rows, strict=True)]
    held = HeldReasons(f"{HELD} with the batch: " + "; ".join(batch) if batch else HELD)
    described = [_failure(o, r, table, names) for o, r in zip(failed, rows, strict=True)]
    held.failures = [entry for entry, _ in described]
    held.texts = [text for _, text in described]
    # file line -> (failed expectation's index, batch position) of each failure on that row
    own: dict[int, list[tuple[int, int]]] = {}
    for index, r in enumerate(rows):
        for position, line in r.items():
            own.setdefault(line, []).append((index, position))
    for line, failures in own.items():
        texts = []
        for index, position in failures:
            value = _shown(failed[index], table, position, names) if table is not None else ""
            texts.append(f"{_name(failed[index])} ({value})" if value else _name(failed[index]))
        # what failed on this row first; what else holds the batch after, so no row hides it
        mine = {index for index, _ in failures}
        others = [b for i, b in enumerate(batch) if i not in mine]
        also = "; also with the batch: " + "; ".join(others) if others else ""
        held.by_line[line] = f"{HELD}: " + "; ".join(texts) + also
    return held


def warned_reasons(
    report: ValidationReport | None, table: pa.Table | None, lines: pa.Array | None, names: dict[str, str]
) -> dict[int, str]:
    """file line -> "warning: ..." for each row of a loaded batch that a warning expectation
    named (talk time over the call's, a repeated VendorEventId, a day-long call), with its
    values: the row loads, and its results line tells the partner which row to look at,
    where only the run's summary said that some rows did (spec audit, 2026-12-07)."""
    texts: dict[int, list[str]] = {}
    for o in report.outcomes if report is not None else []:
        if o.success or o.severity != "warning":
            continue
        for position, line in _failing_lines(o, table, lines).items():
            value = _shown(o, table, position, names) if table is not None else ""
            texts.setdefault(line, []).append(f"{_name(o)} ({value})" if value else _name(o))
    return {line: "warning: " + "; ".join(found) for line, found in texts.items()}


def loaded_reasons(
    report: ValidationReport | None, table: pa.Table | None, lines: pa.Array | None, names: dict[str, str],
    validated: tuple[pa.Table, pa.Array] | None = None,
) -> dict[int, str]:  # fmt: skip
    """file line -> Reason of each loaded row an expectation named: its warnings
    (`warned_reasons`) and, in a batch a reviewer released (`validated`: the batch as judged,
    of which `table` is what loaded), what held the batch on that row, so the partner still
    learns which rows to correct (audit: the release answered every row ACCEPTED with no
    reason, the warnings too)."""
    if validated is None:
        return warned_reasons(report, table, lines, names)
    reasons = warned_reasons(report, *validated, names)
    for line, text in held_reasons(report, *validated, names, "").by_line.items():
        text = f"{RELEASED}: " + text.removeprefix(f"{HELD}: ")
        reasons[line] = f"{text}; {reasons[line]}" if line in reasons else text
    return reasons


RELEASED = "released by a reviewer despite"


def _failing_lines(o: ExpectationOutcome, table: pa.Table | None, lines: pa.Array | None) -> dict[int, int]:
    """Batch position -> file line of each failing row the evaluator named."""
    if table is None or lines is None or not o.unexpected_rows:
        return {}
    positions = sorted({i for i in o.unexpected_rows if 0 <= i < len(lines)})
    found = lines.take(pa.array(positions, pa.int64())).to_pylist()
    return {p: int(n) for p, n in zip(positions, found, strict=True) if n is not None}


def _name(o: ExpectationOutcome) -> str:
    return o.description.strip().rstrip(".") or o.name


def _batch_text(o: ExpectationOutcome, rows: dict[int, int]) -> str:
    """ "line 22 failed 'SaleAmount must not be negative'", or the outcome's own summary for
    a rule about the whole batch (the reject rate), which names no row."""
    if not o.unexpected_lines and rows:  # validated without lines: as the report would name them
        o = replace(o, unexpected_lines=sorted(rows.values())[:LINES_SHOWN])
    lines = o.lines_text()
    if not lines:
        return o.summary()
    word = "line" if lines.isdigit() else "lines"
    return f"{word} {lines} failed '{_name(o)}'"


def _failure(
    o: ExpectationOutcome, rows: dict[int, int], table: pa.Table | None, names: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """One failed expectation in the summary (what, how many rows, the first lines and
    values as the batch holds them) and its one-line text with those values."""
    first = sorted(rows.items(), key=lambda item: item[1])[:EXAMPLES]
    examples = [_example(o, table, p) for p, _ in first] if table is not None else []
    if not o.unexpected_lines and rows:  # validated without lines: as the report would name them
        o = replace(o, unexpected_lines=sorted(rows.values())[:LINES_SHOWN])
    entry = {
        "expectation": _name(o),
        "columns": [names.get(c, c) for c in o.columns],
        "rows_failed": int(o.observed_value.get("unexpected_count") or len(rows)),
        "lines": o.unexpected_lines,
        "examples": examples,
    }
    return entry, o.summary(examples if rows and table is not None else None)


def _cells(o: ExpectationOutcome, table: pa.Table, position: int) -> list[tuple[str, str]]:
    """(column, value) of each checked column the batch holds at `position`, the value as
    Arrow renders the stored one (a decimal keeps its scale: "-5.00")."""
    cells = []
    for c in o.columns:
        if c not in table.column_names:
            continue
        value = table.column(c)[position]
        if value.is_valid and pa.types.is_timestamp(value.type):
            text = _when(value.as_py(), o.expectation_type == "expect_column_values_to_be_between")
        else:
            text = value.cast(pa.string()).as_py() if value.is_valid else "empty"
        if len(text) > VALUE_CHARS:
            text = text[: VALUE_CHARS - 1] + "…"
        cells.append((c, text))
    return cells


def _when(value: dt.datetime, window: bool) -> str:
    """A stored time as a person reads it, "2026-12-07 01:30:00 UTC" (it read
    "2026-12-07 01:30:00.000000Z"), and for a date window which side it is out on: the rule
    says "not in the future, nor more than 90 days old" and the partner must know which."""
    text = f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
    if not window:
        return text
    age = dt.datetime.now(dt.UTC) - value
    return f"{text}, in the future" if age.total_seconds() < 0 else f"{text}, {age.days:,} days old"


def _example(o: ExpectationOutcome, table: pa.Table, position: int) -> str:
    """ "-5.00"; "(200, 185)" for a rule over two columns; for a rule over a column derived
    for the check alone (the already-loaded key, "C-1 / T-2"), the value the check reported."""
    values = [text for _, text in _cells(o, table, position)]
    if not values:
        at = o.unexpected_rows.index(position) if position in o.unexpected_rows else len(o.unexpected_sample)
        return str(o.unexpected_sample[at]) if at < len(o.unexpected_sample) else ""
    return values[0] if len(values) == 1 else f"({', '.join(values)})"


def _shown(o: ExpectationOutcome, table: pa.Table, position: int, names: dict[str, str]) -> str:
    """ "SaleAmount -5.00": the row's checked values under the partner's column names."""
    return ", ".join(f"{names.get(c, c)} {text}" for c, text in _cells(o, table, position))
