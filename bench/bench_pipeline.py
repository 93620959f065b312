"""End-to-end benchmark: one call-conversion file through the whole pipeline, beside DuckDB's
own load of the same file.

    python bench/bench_pipeline.py [--rows N] [--threads T]

Each measurement runs in a fresh subprocess (``--child KIND``) so its peak RSS (VmHWM) is its
own; the growth is VmHWM minus the child's RSS after its imports, shown as a multiple of the
file's size (issue 13 goal: <= 1.5x).

* **ConnectBatch**: `Services.ingest_file` on a fresh data directory: stage (sha256 + copy into
  the ledger's staging area), parse, validate (the columnar evaluator), load (one DuckDB
  transaction: rows, rejects, validation result, one pending action per row) and results
  (results CSV + summary). Stage seconds come from the run's summary file.
* **DuckDB alone**: `CREATE TABLE t AS SELECT * FROM read_csv(file, ignore_errors = true)` on a
  fresh database file with the same number of threads, which types by sniffing and validates
  nothing. Issue 13 goal: ConnectBatch's whole ingest <= 0.6x that.
* The parse alone, in the ConnectBatch child, on the same file.
* A file of `stream.STREAM_MIN_BYTES` or more streams in bounded batches (pipeline/stream.py);
  `--stream-min-bytes=10000000000` measures the whole-parse path on the same file.

CPU seconds (user + system, all threads) are reported beside the wall-clock seconds of both
sides: on a machine other work shares, the wall clock counts the waits for a core, the CPU
seconds mostly do not.

The generated dates are from early 2026, so the validation window is widened for the run.
Results also go to bench/results/pipeline.json for bench/summary.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from bench_parse import _proc_status_kb, ensure_file  # noqa: E402 (after the path set-up)
from benchkit import bench_services, report, run_child, save  # noqa: E402


def _cpu() -> float:
    """This process's CPU seconds so far, user + system, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ours(
    path: Path, threads: int, parquet_min_rows: int | None = None, stream_min_bytes: int | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as home:
        os.environ["CONNECTBATCH_PARSE_THREADS"] = str(threads)
        services = bench_services(home)
        if parquet_min_rows is not None:  # e.g. a huge number: the rows inserted, as before parts
            from connectbatch.store import data as data_store

            data_store.PARQUET_MIN_ROWS = parquet_min_rows
        if stream_min_bytes is not None:  # e.g. a huge number: the whole parse, as before streaming
            from connectbatch.pipeline import stream

            stream.STREAM_MIN_BYTES = stream_min_bytes
        from connectbatch.parser import api as csvparse
        from connectbatch.pipeline.validation import warm

        warm.warm_up()  # start-up work of a long-running process, not the file's
        baseline = _proc_status_kb("VmRSS")
        t, cpu = time.perf_counter(), _cpu()
        run = services.ingest_file("bench", path)
        whole, whole_cpu = time.perf_counter() - t, _cpu() - cpu
        peak = _proc_status_kb("VmHWM")
        summary = next(p for p in services.results_files("bench") if p.name.endswith(".summary.json"))
        stages = json.loads(summary.read_text())["seconds"]
        t = time.perf_counter()
        parsed = csvparse.parse_file(path)
        parse_alone = time.perf_counter() - t
        del parsed
        return {
            "whole": whole, "whole_cpu": whole_cpu, "stages": stages, "parse_alone": parse_alone,
            "status": run.status.value,
            "rows_accepted": run.rows_accepted, "rows_rejected": run.rows_rejected,
            "actions": run.actions_created, "growth_kb": peak - baseline,
        }  # fmt: skip


def _duckdb(path: Path, threads: int) -> dict[str, Any]:
    import duckdb

    with tempfile.TemporaryDirectory(prefix="cb-bench-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "peer.duckdb"))
        con.execute(f"SET threads = {threads}")
        baseline = _proc_status_kb("VmRSS")
        t, cpu = time.perf_counter(), _cpu()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}', ignore_errors = true)")
        seconds, seconds_cpu = time.perf_counter() - t, _cpu() - cpu
        peak = _proc_status_kb("VmHWM")
        rows = con.execute("SELECT count(*) FROM t").fetchone()
        con.close()
    return {
        "seconds": seconds, "cpu": seconds_cpu, "rows": rows[0] if rows else 0, "growth_kb": peak - baseline,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--file", type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--parquet-min-rows", type=int, help="store a file of this many rows as a Parquet part"
    )
    parser.add_argument(
        "--stream-min-bytes", type=int, help="stream a file of this many bytes (pipeline/stream.py)"
    )
    parser.add_argument("--child", choices=["ours", "duckdb"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path = args.file or ensure_file(args.rows, args.seed)
    if args.child:
        if args.child == "ours":
            report(_ours(path, args.threads, args.parquet_min_rows, args.stream_min_bytes))
        else:
            report(_duckdb(path, args.threads))
        return 0
    passed = [f"--file={path}", f"--threads={args.threads}"]
    if args.parquet_min_rows is not None:
        passed.append(f"--parquet-min-rows={args.parquet_min_rows}")
    if args.stream_min_bytes is not None:
        passed.append(f"--stream-min-bytes={args.stream_min_bytes}")
    size = path.stat().st_size
    ours = run_child(__file__, "ours", passed)
    peer = run_child(__file__, "duckdb", passed)
    stages = ours["stages"]
    stages = {"stage + ledger": round(ours["whole"] - sum(stages.values()), 3), **stages}
    ratio = ours["whole"] / peer["seconds"]

    print(
        f"# Pipeline: {path.name} ({size / 1e6:,.1f} MB, {ours['rows_accepted']:,} rows accepted, "
        f"{ours['rows_rejected']:,} rejected, {ours['actions']:,} actions), status {ours['status']}, "
        f"{args.threads} thread(s)"
    )
    print()
    print("| stage | seconds |")
    print("|---|---:|")
    for name, seconds in stages.items():
        print(f"| {name} | {seconds:.2f} |")
    print(f"| **whole ingest** | **{ours['whole']:.2f}** |")
    print()
    print("| load of the same file | seconds | CPU seconds | peak RSS growth (x file) |")
    print("|---|---:|---:|---:|")
    print(
        f"| ConnectBatch whole ingest (typed, validated, actions, results) | {ours['whole']:.2f} "
        f"| {ours['whole_cpu']:.2f} | {ours['growth_kb'] * 1024 / size:.2f}x |"
    )
    print(
        f"| DuckDB `CREATE TABLE AS SELECT * FROM read_csv` ({peer['rows']:,} rows, validates nothing) "
        f"| {peer['seconds']:.2f} | {peer['cpu']:.2f} | {peer['growth_kb'] * 1024 / size:.2f}x |"
    )
    print()
    print(
        f"whole / DuckDB load = **{ratio:.2f}x** (issue 13 goal <= 0.6x; "
        f"CPU seconds {ours['whole_cpu'] / peer['cpu']:.2f}x); "
        f"parse alone {ours['parse_alone']:.2f} s; "
        f"whole / parse alone = {ours['whole'] / ours['parse_alone']:.2f}x"
    )
    save("pipeline", {"file": path.name, "size": size, "threads": args.threads, "ours": ours, "duckdb": peer})
    return 0 if ours["status"] == "Completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
