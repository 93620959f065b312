"""Warm-up: one tiny validation per data type, run when a long-lived process starts.

The first validation in a process pays for imports and one-off set-up that no later one
pays: pyarrow's compute kernels, pandas (pulled in by `pa.array` on Python objects and by
the suites' observed values), the suites read from `expectations/`, and great-expectations
itself where it judges (CONNECTBATCH_VALIDATION_ENGINE=gx, or an expectation type the columnar
evaluator does not know). `connectbatch serve` and the app's engine run this once at start
(engine/__init__.py, in a background thread) so a partner's first file after a restart is as
quick as the next one (issue 13: the first ingest after `serve` started took ~14 s).
"""

from __future__ import annotations

from connectbatch import schemas
from connectbatch.parser import api as csvparse
from connectbatch.pipeline.validation.batch import validate


def warm_up() -> list[str]:
    """Parse and validate each data type's template file (header + one example row), the way
    an ingest does; return the data types warmed, in registry order.

    The template stands in for a partner file: same parser, same suite, the run-time
    "already loaded" rule and file lines included, so the same code paths load."""
    warmed = []
    for key, data_type in schemas.REGISTRY.items():
        parsed = csvparse.parse_bytes(data_type.template_csv().encode(), key)
        validate(
            parsed.table,
            key,
            rows_rejected=len(parsed.rejects),
            already_loaded=("warm-up",) if data_type.key_columns else (),
            lines=parsed.lines,
        )
        warmed.append(key)
    return warmed
