"""Validation benchmark: the columnar evaluator vs great-expectations, same suite, same batch.

    python bench/bench_validation.py [--rows N] [--small N] [--seed S] [--repeat R]

Both engines validate the call-conversion suite (plus the run-time "already loaded" rule)
on the same parsed batch of the generated bench file, through `validation.validate`, so the
times include what an ingest pays: the Arrow -> pandas conversion for GX, result conversion
for both. "first" is the first call in this process (the evaluator runs before GX was ever
imported; GX's first call includes its import and context); "warm" is the best of --repeat
later calls. The last column says whether the two reports' outcomes are identical. Default
sizes: 200 rows (a typical small file) and 100,000 rows (GX needs ~1 minute at 1M; pass
--rows 1000000 for that). Timings are wall-clock on a shared machine: noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_parse import ensure_file
from benchkit import save

NOW = datetime(2026, 2, 1, tzinfo=UTC)  # cuts through the generated dates: some rows fail


def _timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="the large batch")
    parser.add_argument("--small", type=int, default=200, help="the small batch")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    args, _ = parser.parse_known_args(argv)  # `make bench` passes BENCH_ARGS to every script

    from connectbatch import schemas
    from connectbatch.parser.api import parse_file
    from connectbatch.pipeline.validation import validate
    from connectbatch.schemas import record_key

    rows_list = sorted({args.small, min(args.rows, 1_000_000)})
    batches = {}
    for rows in rows_list:
        parsed = parse_file(ensure_file(rows, args.seed), "call_conversions")
        identities = record_key.texts(schemas.get("call_conversions"), parsed.table)
        keys = identities.to_pylist()[: max(1, rows // 100)]  # 1 % of the rows already loaded
        batches[rows] = (parsed, keys)

    def run(rows: int, engine: str) -> Any:
        parsed, keys = batches[rows]
        return validate(
            parsed.table, "call_conversions", now=NOW, lines=parsed.lines, already_loaded=keys,
            rows_rejected=parsed.rows_rejected, max_age_days=60, engine=engine,
        )  # fmt: skip

    table: list[tuple[str, ...]] = []
    measured: list[dict[str, Any]] = []
    first: dict[str, float] = {}
    for engine in ("columnar", "gx"):  # columnar first: GX not yet imported
        first[engine], _ = _timed(lambda e=engine: run(rows_list[0], e))
    for rows in rows_list:
        warm: dict[str, float] = {}
        reports: dict[str, Any] = {}
        for engine in ("columnar", "gx"):
            times = []
            for _ in range(args.repeat if rows <= 200_000 or engine == "columnar" else 1):
                seconds, reports[engine] = _timed(lambda r=rows, e=engine: run(r, e))
                times.append(seconds)
            warm[engine] = min(times)
        ours, theirs = reports["columnar"].outcomes, reports["gx"].outcomes
        same = [asdict(o) for o in ours] == [asdict(o) for o in theirs]
        failed = sum(1 for o in reports["gx"].outcomes if not o.success)
        measured.append({"rows": rows, "columnar": warm["columnar"], "gx": warm["gx"], "identical": same})
        table.append(
            (
                f"{rows:,}",
                f"{warm['columnar'] * 1000:,.1f}",
                f"{warm['gx'] * 1000:,.1f}",
                f"{warm['gx'] / warm['columnar']:,.0f}x",
                f"{failed}",
                "yes" if same else "**NO**",
            )
        )

    print("# Validation: columnar evaluator vs great-expectations (call_conversions suite)")
    print()
    print(
        "| rows | evaluator ms (warm) | GX ms (warm) | GX / evaluator | failed expectations "
        "| identical outcomes |"
    )
    print("|---:|---:|---:|---:|---:|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print()
    print(
        f"first call in the process, {rows_list[0]:,} rows: evaluator {first['columnar'] * 1000:,.0f} ms; "
        f"GX {first['gx']:,.2f} s (import + context + validation)"
    )
    save("validation", {"batches": measured, "first": first})
    return 0 if all(r[-1] == "yes" for r in table) else 1


if __name__ == "__main__":
    raise SystemExit(main())
