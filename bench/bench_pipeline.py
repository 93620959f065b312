"""End-to-end benchmark: one call-conversion file through the whole pipeline.

    python bench/bench_pipeline.py [--rows N]

Stages as the ingest runs them on a fresh data directory: stage (sha256 + copy into the
ledger's staging area), parse, validate (the columnar evaluator; GX with
CONNECTBATCH_VALIDATION_ENGINE=gx), load (one DuckDB transaction:
rows, rejects, validation result, one pending action per row) and results (results CSV +
summary). The parse alone is measured in the same process on the same file, so the ratio
"whole / parse" is comparable run to run. Target: whole <= 3x parse alone.
The generated dates are from early 2026, so the validation window is widened for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_parse import ensure_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--file", type=Path)
    args = parser.parse_args(argv)
    path = args.file or ensure_file(args.rows, args.seed)
    size = path.stat().st_size

    with tempfile.TemporaryDirectory(prefix="cb-bench-") as home:
        os.environ["CONNECTBATCH_HOME"] = home
        os.environ["CONNECTBATCH_MAX_AGE_DAYS"] = "100000"
        from connectbatch import settings
        from connectbatch.models import Connection
        from connectbatch.parser import api as csvparse
        from connectbatch.pipeline import validation
        from connectbatch.services import Services

        if settings.validation_engine() == "gx":
            validation.gx_context()  # the one-off GX import is start-up, not per-file work
        t = time.perf_counter()
        parsed = csvparse.parse_file(path)
        parse_alone = time.perf_counter() - t
        del parsed

        services = Services()
        draft = Connection(
            name="bench", data_type="call_conversions", direction="inbound",  # type: ignore[arg-type]
            method="sftp", methodology="push", lock_days=3650,  # type: ignore[arg-type]
        )  # fmt: skip
        if all(p.name != "bench" for p in services.partners()):
            services.add_partner("bench", "brand")
        services.create_connection(draft, partner="bench")
        t = time.perf_counter()
        run = services.ingest_file("bench", path)
        whole = time.perf_counter() - t
        summary_path = next(p for p in services.results_files("bench") if p.name.endswith(".summary.json"))
        stages = json.loads(summary_path.read_text())["seconds"]
        accounted = sum(stages.values())
        stages = {"stage + ledger": round(whole - accounted, 3), **stages}

    print(
        f"# Pipeline: {path.name} ({size / 1e6:,.1f} MB, {run.rows_accepted:,} rows accepted, "
        f"{run.rows_rejected:,} rejected, {run.actions_created:,} actions), status {run.status.value}"
    )
    print()
    print("| stage | seconds |")
    print("|---|---:|")
    for name, seconds in stages.items():
        print(f"| {name} | {seconds:.2f} |")
    print(f"| **whole ingest** | **{whole:.2f}** |")
    print()
    ratio = whole / parse_alone
    print(f"parse alone: {parse_alone:.2f} s; whole / parse alone = {ratio:.2f}x (target <= 3x)")
    return 0 if run.status.value == "Completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
