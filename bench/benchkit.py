"""What several benchmarks set up the same way: a fresh data folder with one call-conversion
push connection ("bench", lock period ten years so no generated row is late), generated
200-row files to ingest into it, and measurements run in a child process of their own (its
imports, caches and peak memory are its own), which prints one `BENCH_RESULT {json}` line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

RESULT_MARKER = "BENCH_RESULT "
# Every benchmark leaves its figures here as <name>.json; bench/summary.py reads them.
RESULTS = Path(__file__).resolve().parent / "results"

if TYPE_CHECKING:
    from connectbatch.services import Services


def bench_services(home: str) -> Services:
    """Services on a fresh data folder `home` with the "bench" connection (imports
    ConnectBatch only now: the environment must be set first)."""
    os.environ["CONNECTBATCH_HOME"] = home
    os.environ["CONNECTBATCH_MAX_AGE_DAYS"] = "100000"  # the generated dates are early 2026
    from connectbatch.models import Connection
    from connectbatch.services import Services

    services = Services()
    services.add_partner("bench", "brand")
    draft = Connection(
        name="bench", data_type="call_conversions", direction="inbound",  # type: ignore[arg-type]
        method="sftp", methodology="push", lock_days=3650,  # type: ignore[arg-type]
    )  # fmt: skip
    services.create_connection(draft, partner="bench")
    return services


def small_files(home: str, count: int, seed: int, rows: int = 200) -> list[Path]:
    """`count` generated call-conversion files of `rows` rows, each with its own seed."""
    import generate

    paths = []
    for i in range(count):
        path = Path(home) / f"calls_{seed + i}.csv"
        generate.generate(path, rows=rows, seed=seed + i)
        paths.append(path)
    return paths


def report(result: dict[str, Any]) -> None:
    """In a child: hand the measurement to the parent."""
    print(RESULT_MARKER + json.dumps(result), flush=True)


def run_child(script: str, kind: str, argv: list[str]) -> dict[str, Any]:
    """Run `script --child kind *argv` in a fresh interpreter; its measurement."""
    proc = subprocess.run(
        [sys.executable, script, "--child", kind, *argv], capture_output=True, text=True, check=False,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return result
    raise SystemExit(f"bench child {kind} failed:\n{proc.stderr[-3000:]}")


def save(name: str, figures: dict[str, Any]) -> None:
    """Leave a benchmark's figures as bench/results/<name>.json for bench/summary.py."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2))
