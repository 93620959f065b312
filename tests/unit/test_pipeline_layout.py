"""The pipeline package keeps one concept per module, and the names other packages import
from it stay where they are."""

from __future__ import annotations

from pathlib import Path

import connectbatch.pipeline

PIPELINE = Path(connectbatch.pipeline.__file__).parent
MAX_LINES = 400


def test_no_pipeline_module_grows_past_the_size_limit() -> None:
    sizes = {
        str(p.relative_to(PIPELINE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in PIPELINE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_ingestor_and_validation_names_stay_importable() -> None:
    from connectbatch.pipeline import ingest, validation

    assert ingest.Ingestor and ingest.Received and ingest.Clock and ingest.utcnow
    for name in (
        "validate",
        "build_suite",
        "load_suite",
        "gx_context",
        "ValidationReport",
        "ExpectationOutcome",
    ):
        assert hasattr(validation, name), name
