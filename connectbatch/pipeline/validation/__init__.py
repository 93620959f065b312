"""Batch validation: great-expectations suites per data type, run on a parsed Arrow table.

    report = validate(result.table, "call_conversions", rows_rejected=result.rows_rejected,
                      already_loaded=ids_in_store)
    report.success            # False when a *critical* expectation failed -> quarantine
    report.critical_failures  # one readable line per failed critical expectation
    report.outcomes[i].unexpected_rows  # table row indexes -> result.lines[i] = file line
    report.outcomes[i].unexpected_lines  # the first 20 of those file lines (given lines=)

In the order things happen:
- `suites`: the suite of a data type, built from the schema registry plus hand-written rules
  (`build_suite`, which `scripts/generate_expectations.py` writes to `expectations/`) and read
  back from that folder (`load_suite`);
- `batch`: `validate` binds the event-date window, adds the run-time "already loaded" rule
  and judges the parser's reject rate;
- `columnar`: the evaluator that judges the suites' expectation types over the Arrow batch and
  returns GX's result for each (tests/unit/test_validation_parity.py runs GX as the oracle);
  what it does not know goes to GX;
- `gx`: the great-expectations runtime (one ephemeral context per process, imported on first
  use because GX costs ~3 s to import; not at all when the evaluator knows every expectation,
  or everything with CONNECTBATCH_VALIDATION_ENGINE=gx) and the conversion of results;
- `report`: `ValidationReport` and `ExpectationOutcome`, what is stored and shown.
Importing this package (for `build_suite`, the CLI, the UI) stays cheap: GX is not imported.
"""

from connectbatch.pipeline.validation.batch import ALREADY_LOADED_SUFFIX, validate
from connectbatch.pipeline.validation.gx import gx_context
from connectbatch.pipeline.validation.report import (
    REJECT_RATE_TYPE,
    ExpectationOutcome,
    ValidationReport,
)
from connectbatch.pipeline.validation.suites import (
    EXPECTATIONS_DIR,
    MAX_EVENT_DATE,
    MIN_EVENT_DATE,
    Severity,
    build_suite,
    load_suite,
    suite_path,
)

__all__ = [
    "ALREADY_LOADED_SUFFIX",
    "EXPECTATIONS_DIR",
    "MAX_EVENT_DATE",
    "MIN_EVENT_DATE",
    "REJECT_RATE_TYPE",
    "ExpectationOutcome",
    "Severity",
    "ValidationReport",
    "build_suite",
    "gx_context",
    "load_suite",
    "suite_path",
    "validate",
]
