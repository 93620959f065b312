"""The pipeline package keeps one concept per module, and the names other packages import
from it stay where they are; no module of the package grows past STYLE's 500 lines."""

from __future__ import annotations

from pathlib import Path

import connectbatch.pipeline

PIPELINE = Path(connectbatch.pipeline.__file__).parent
PACKAGE = PIPELINE.parent
MAX_LINES = 400
MAX_MODULE_LINES = 500  # STYLE: "Modules under ~400 lines (500 at most)"


def test_no_pipeline_module_grows_past_the_size_limit() -> None:
    sizes = {
        str(p.relative_to(PIPELINE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in PIPELINE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_no_module_of_the_package_grows_past_500_lines() -> None:
    """Python modules and the compiled parser's Cython parts (the generated C is not ours)."""
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for pattern in ("*.py", "*.pyx", "*.pxi", "*.pxd")
        for p in PACKAGE.rglob(pattern)
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


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
