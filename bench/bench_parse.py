"""Benchmark ConnectBatch's CSV parser against the usual Python CSV readers on one file.

Run by ``make bench`` as::

    python bench/bench_parse.py [--rows N] [--file PATH] [--repeat R] [--parsers a,b,...]

Why it is built this way:

* **One fresh subprocess per measurement.**  Peak RSS (``VmHWM``) is a process-lifetime high-water
  mark, so the only honest per-parser peak is one taken in a process that ran nothing else.  It
  also stops one library's allocator state, thread pools or caches from helping the next.
* **Timing inside the child, after imports.**  Interpreter start-up and importing pandas/pyarrow
  (hundreds of ms) say nothing about parsing; reading the file does, so it is inside the timing.
* **Warm page cache.**  The parent reads the file once before any measurement, so every parser
  (and every repeat) starts from the same state; best-of-N then removes scheduler noise.
* **Forgiving peers.**  The file contains 0.5 % deliberately broken rows (see ``generate.py``).
  Each peer gets the options it offers for skipping/tolerating them, so we measure parsing, not
  error paths; a peer that still fails is reported as FAILED instead of aborting the benchmark.

The same script is its own child: ``--child NAME --file PATH [--loops N]`` measures one parser in
the current process and prints one ``BENCH_RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_FILE = BENCH_DIR / "results" / "latest.md"
RESULT_MARKER = "BENCH_RESULT "
MB = 1_000_000  # all sizes are reported in MB = 10**6 bytes

sys.path.insert(0, str(BENCH_DIR))
import generate  # noqa: E402  (sibling module; bench/ is not a package)

# A parser run: takes the CSV path, returns (object holding the parsed data, rows, note).
# The object is returned so it stays alive until the child has read its peak RSS.
Runner = Callable[[str], tuple[Any, int, str]]


class NotAvailable(Exception):
    """The parser cannot be imported here (not installed / not built): skip it, don't fail."""


# --- parsers (imports happen inside the loaders, i.e. only in the child that needs them) ----------


def _load_csv_module() -> Runner:
    import csv

    def run(path: str) -> tuple[Any, int, str]:
        # surrogateescape: the file has a few invalid UTF-8 bytes and csv has no skip option.
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.reader(f))
        return rows, max(0, len(rows) - 1), ""

    return run


def _load_pandas() -> Runner:
    import pandas as pd

    def run(path: str) -> tuple[Any, int, str]:
        df = pd.read_csv(path, on_bad_lines="skip", encoding_errors="replace")
        return df, len(df), ""

    return run


def _load_pyarrow(use_threads: bool) -> Callable[[], Runner]:
    def load() -> Runner:
        import pyarrow.csv as pacsv

        read_options = pacsv.ReadOptions(use_threads=use_threads)
        parse_options = pacsv.ParseOptions(
            newlines_in_values=True,  # the file has quoted newlines; without this, rows split
            invalid_row_handler=lambda row: "skip",
        )

        def run(path: str) -> tuple[Any, int, str]:
            table = pacsv.read_csv(path, read_options=read_options, parse_options=parse_options)
            return table, table.num_rows, ""

        return run

    return load


def _load_polars() -> Runner:
    import polars as pl

    def run(path: str) -> tuple[Any, int, str]:
        df = pl.read_csv(path, ignore_errors=True, truncate_ragged_lines=True, encoding="utf8-lossy")
        return df, df.height, ""

    return run


def _load_duckdb() -> Runner:
    import duckdb

    def run(path: str) -> tuple[Any, int, str]:
        con = duckdb.connect()  # in-memory; the default thread count is the core count
        literal = "'" + path.replace("'", "''") + "'"
        table = con.sql(f"SELECT * FROM read_csv({literal}, ignore_errors = true)").to_arrow_table()
        con.close()
        return table, table.num_rows, ""

    return run


def _load_connectbatch(threads: int) -> Callable[[], Runner]:
    def load() -> Runner:
        # Benchmark the source tree (in-place build), whether or not the package is installed.
        sys.path.insert(0, str(REPO_ROOT))
        try:
            from connectbatch.parser.api import parse_file  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise NotAvailable(f"not built ({exc})") from exc

        # As the ingest parses its staged copy: mapped when big (a build without the option reads).
        mapped = {"mapped": True} if "mapped" in inspect.signature(parse_file).parameters else {}

        def run(path: str) -> tuple[Any, int, str]:
            result = parse_file(path, threads=threads, **mapped)
            # Rejected records (one record can have several rejects) when the result says so.
            rejected = getattr(result, "rows_rejected", len(result.rejects))
            return result, result.table.num_rows, f"+{rejected:,} rejected"

        return run

    return load


@dataclass(frozen=True)
class Parser:
    """A benchmarked parser: table label, loader (runs in the child), distribution for versions."""

    label: str
    load: Callable[[], Runner]
    dist: str


_CORES = os.cpu_count() or 1
PARSERS: dict[str, Parser] = {
    "csv": Parser("Python csv module (lists)", _load_csv_module, ""),
    "pandas": Parser("pandas.read_csv (C engine)", _load_pandas, "pandas"),
    "pyarrow-1t": Parser("pyarrow.csv (1 thread)", _load_pyarrow(False), "pyarrow"),
    "pyarrow-mt": Parser(f"pyarrow.csv ({_CORES} threads)", _load_pyarrow(True), "pyarrow"),
    "polars": Parser(f"polars.read_csv ({_CORES} threads)", _load_polars, "polars"),
    "duckdb": Parser(f"duckdb read_csv → Arrow ({_CORES} threads)", _load_duckdb, "duckdb"),
    "connectbatch": Parser(
        "ConnectBatch parse_file (typed, 1 thread)", _load_connectbatch(1), "connectbatch"
    ),
    "connectbatch-2t": Parser(
        "ConnectBatch parse_file (typed, 2 threads)", _load_connectbatch(2), "connectbatch"
    ),
}


# --- child side -----------------------------------------------------------------------------------


def _proc_status_kb(field: str) -> int:
    """Read one ``kB`` field (VmRSS, VmHWM) of /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _caused_by_import_error(exc: BaseException) -> bool:
    """True if an ImportError is anywhere in the chain (a lazily imported core is missing)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ImportError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def child_main(name: str, path: str, loops: int) -> int:
    """Measure one parser in this process; print one ``BENCH_RESULT`` JSON line."""
    result: dict[str, Any] = {"parser": name}
    try:
        run = PARSERS[name].load()
    except NotAvailable as exc:
        result.update(status="unavailable", error=str(exc))
        print(RESULT_MARKER + json.dumps(result), flush=True)
        return 0
    baseline_kb = _proc_status_kb("VmRSS")
    best = float("inf")
    cpu = 0.0
    rows, note, peak_kb = 0, "", 0
    try:
        for _ in range(loops):
            t0, c0 = time.perf_counter(), time.process_time()
            data, rows, note = run(path)
            elapsed = time.perf_counter() - t0
            if elapsed < best:
                best, cpu = elapsed, time.process_time() - c0
            peak_kb = _proc_status_kb("VmHWM")  # read while `data` is still alive
            del data
    except Exception as exc:  # any peer failure is a result, not a crash of the benchmark
        status = "unavailable" if _caused_by_import_error(exc) else "failed"
        result.update(status=status, error=_first_line(exc))
        print(RESULT_MARKER + json.dumps(result), flush=True)
        return 0
    result.update(
        status="ok",
        seconds=best,
        cpu_seconds=cpu,
        rows=rows,
        note=note,
        baseline_kb=baseline_kb,
        peak_kb=peak_kb,
    )
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


# --- parent side ----------------------------------------------------------------------------------


@dataclass
class Measurement:
    """Outcome of one parser: best of the repeats, or why there is no number."""

    name: str
    status: str  # ok | unavailable | failed
    error: str = ""
    seconds: float = 0.0
    # CPU seconds of the process (every thread) in the fastest run: on a busy machine wall
    # time mostly measures the other work, while one-thread CPU time still compares parsers
    cpu_seconds: float = 0.0
    rows: int = 0
    note: str = ""
    peak_mb: float = 0.0
    growth_mb: float = 0.0


def _run_child(name: str, path: Path, loops: int, timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its decoded result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    cmd += ["--file", str(path), "--loops", str(loops)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timeout after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            decoded: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return decoded
    if proc.returncode < 0:
        reason = f"killed by signal {-proc.returncode}"  # e.g. 9 = out of memory
    else:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        reason = tail[-1] if tail else f"exit code {proc.returncode}"
    return {"status": "failed", "error": reason}


def measure(name: str, path: Path, repeat: int, loops: int, timeout: float) -> Measurement:
    """Best of ``repeat`` fresh-process runs; memory figures come from the fastest run."""
    best: Measurement | None = None
    for _ in range(repeat):
        r = _run_child(name, path, loops, timeout)
        if r["status"] != "ok":
            return Measurement(name, r["status"], error=r.get("error", ""))
        m = Measurement(
            name,
            "ok",
            seconds=r["seconds"],
            cpu_seconds=r.get("cpu_seconds", 0.0),
            rows=r["rows"],
            note=r["note"],
            peak_mb=r["peak_kb"] * 1024 / MB,
            growth_mb=(r["peak_kb"] - r["baseline_kb"]) * 1024 / MB,
        )
        if best is None or m.seconds < best.seconds:
            best = m
    assert best is not None  # repeat >= 1
    return best


def ensure_file(rows: int, seed: int) -> Path:
    """Return the cached generated file for (rows, seed), generating it if missing.

    The generator's file-format version is part of the name, so a changed generator never
    silently reuses an old file.
    """
    path = DATA_DIR / f"callconv_v{generate.FORMAT_VERSION}_r{rows}_s{seed}.csv"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.relative_to(REPO_ROOT)} ({rows:,} rows) …", file=sys.stderr)
        t0 = time.perf_counter()
        generate.generate(path, rows, seed)
        print(f"  done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def _warm_page_cache(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(dist: str) -> str:
    if not dist:
        return platform.python_version()
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        if dist == "connectbatch":
            return "source tree"
        return "not installed"


def header_lines(path: Path, rows: int | None) -> list[str]:
    """Context that makes a results table comparable: machine, versions, input."""
    versions = ", ".join(
        f"{d} {_version(d)}" for d in ("pandas", "pyarrow", "polars", "duckdb", "connectbatch")
    )
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    size = path.stat().st_size
    if rows is None:
        data = f"Input: `{path}`, {size / MB:,.1f} MB (external file)"
    else:
        data = f"Input: `{path.name}`, {size / MB:,.1f} MB, {rows:,} rows ({size / rows:.0f} B/row)"
    return [
        f"**{now}** · {platform.machine()} · {_cpu_model()} · {_CORES} cores · "
        f"Python {platform.python_version()} · {versions}",
        "",
        data,
    ]


def table_lines(results: Sequence[Measurement], size: int) -> list[str]:
    """The Markdown results table."""
    out = [
        "| parser | seconds | CPU s | MB/s | peak RSS MB | RSS growth MB (x file size) | rows |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        label = PARSERS[m.name].label
        if m.status == "unavailable":
            out.append(f"| {label} | not built | | | | | |")
        elif m.status == "failed":
            out.append(f"| {label} | FAILED: {m.error.replace('|', '/')[:160]} | | | | | |")
        else:
            rows = f"{m.rows:,}" + (f" ({m.note})" if m.note else "")
            out.append(
                f"| {label} | {m.seconds:.2f} | {m.cpu_seconds:.2f} | {size / MB / m.seconds:,.0f} | "
                f"{m.peak_mb:,.0f} | {m.growth_mb:,.0f} ({m.growth_mb * MB / size:.1f}x) | {rows} |"
            )
    return out


def _why_missing(m: Measurement | None) -> str:
    if m is None:
        return "not measured"
    return "not built" if m.status == "unavailable" else "failed"


def _ratio_line(cb: Measurement | None, peer: Measurement | None, peer_label: str) -> str:
    """One 'ConnectBatch vs peer' line: speed, peak RSS and RSS growth as ratios."""
    if cb is None or cb.status != "ok":
        return f"- ConnectBatch vs {peer_label}: n/a (ConnectBatch {_why_missing(cb)})"
    if peer is None or peer.status != "ok":
        return f"- ConnectBatch vs {peer_label}: n/a ({peer_label} {_why_missing(peer)})"
    growth = cb.growth_mb / peer.growth_mb if peer.growth_mb > 0 else float("nan")
    return (
        f"- ConnectBatch vs {peer_label}: **{peer.seconds / cb.seconds:.2f}x the speed** "
        f"({cb.seconds:.2f} s vs {peer.seconds:.2f} s; CPU {cb.cpu_seconds:.2f} s vs "
        f"{peer.cpu_seconds:.2f} s = {_cpu_ratio(cb, peer)}), "
        f"{cb.peak_mb / peer.peak_mb:.2f}x the peak RSS, {growth:.2f}x the RSS growth"
    )


def _cpu_ratio(cb: Measurement, peer: Measurement) -> str:
    """The peer's CPU seconds over ours: on a busy machine the steadier of the two ratios."""
    return f"{peer.cpu_seconds / cb.cpu_seconds:.2f}x" if cb.cpu_seconds > 0 else "n/a"


def _threads_line(one: Measurement | None, two: Measurement | None) -> str:
    """ConnectBatch on 2 threads against itself on 1 (issue 13's goal: at least 1.8x)."""
    if one is None or one.status != "ok" or two is None or two.status != "ok":
        missing = two if one is not None and one.status == "ok" else one
        return f"- ConnectBatch 2 threads vs 1 thread: n/a ({_why_missing(missing)})"
    return (
        f"- ConnectBatch 2 threads vs 1 thread: **{one.seconds / two.seconds:.2f}x the speed** "
        f"({two.seconds:.2f} s vs {one.seconds:.2f} s), {two.peak_mb / one.peak_mb:.2f}x the peak RSS"
    )


def _small_line(m: Measurement, rows: int, loops: int) -> str:
    label = PARSERS[m.name].label
    if m.status != "ok":
        what = "not built" if m.status == "unavailable" else f"FAILED: {m.error}"
        return f"- {label}, {rows:,}-row file: {what}"
    return (
        f"- {label}, {rows:,}-row file: **{m.seconds * 1000:.1f} ms** "
        f"(best of {loops} in one process; {m.rows:,} rows{', ' + m.note if m.note else ''})"
    )


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=generate.DEFAULT_ROWS, help="rows to generate")
    parser.add_argument("--seed", type=int, default=generate.DEFAULT_SEED, help="generator seed")
    parser.add_argument("--file", type=Path, help="benchmark this CSV instead of a generated one")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per parser")
    parser.add_argument(
        "--parsers",
        default=",".join(PARSERS),
        help=f"comma-separated subset of: {', '.join(PARSERS)}",
    )
    parser.add_argument("--small-rows", type=int, default=10_000, help="rows of the small file")
    parser.add_argument("--small-loops", type=int, default=20, help="runs on the small file")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a child is abandoned")
    parser.add_argument("--no-results-file", action="store_true", help=f"do not write {RESULTS_FILE.name}")
    parser.add_argument("--child", choices=sorted(PARSERS), help=argparse.SUPPRESS)
    parser.add_argument("--loops", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.loops < 1 or args.small_loops < 1:
        parser.error("--repeat, --loops and --small-loops must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child:
        if args.file is None:
            raise SystemExit("--child needs --file")
        return child_main(args.child, str(args.file), args.loops)

    names = [n.strip() for n in args.parsers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PARSERS]
    if unknown:
        raise SystemExit(f"unknown parser(s): {', '.join(unknown)}; known: {', '.join(PARSERS)}")

    if args.file is not None:
        path, rows = args.file.resolve(), None
    else:
        path, rows = ensure_file(args.rows, args.seed), args.rows
    size = path.stat().st_size
    small_path = ensure_file(args.small_rows, args.seed)
    _warm_page_cache(path)
    _warm_page_cache(small_path)

    results: list[Measurement] = []
    for name in names:
        print(f"measuring {name} ({args.repeat}x) …", file=sys.stderr, flush=True)
        m = measure(name, path, args.repeat, 1, args.timeout)
        results.append(m)
        if m.status == "ok":
            print(f"  {m.seconds:.2f} s, peak {m.peak_mb:,.0f} MB", file=sys.stderr)
        else:
            print(f"  {m.status}: {m.error}", file=sys.stderr)

    # Small file: per-call overhead matters for the many small partner files we also get.
    small_names = [n for n in ("connectbatch", "pyarrow-1t") if n in names]
    small = [measure(n, small_path, 1, args.small_loops, args.timeout) for n in small_names]

    by_name = {m.name: m for m in results}
    cb = by_name.get("connectbatch")
    lines = [
        "# Parser benchmark",
        "",
        *header_lines(path, rows),
        "",
        f"Best of {args.repeat} runs, each in a fresh process; seconds include reading the file "
        "(page cache warm) and exclude interpreter start-up and imports. Peak RSS is the child's "
        "VmHWM; growth is VmHWM minus the child's RSS after imports. MB = 10^6 bytes.",
        "",
        *table_lines(results, size),
        "",
        "Small file:",
        "",
        *[_small_line(m, args.small_rows, args.small_loops) for m in small],
        "",
        "Ratios:",
        "",
        _ratio_line(cb, by_name.get("pyarrow-1t"), "pyarrow (1 thread)"),
        _ratio_line(
            by_name.get("connectbatch-2t"), by_name.get("pyarrow-mt"), f"pyarrow ({_CORES} threads)"
        ).replace("ConnectBatch", "ConnectBatch (2 threads)", 1),
        _threads_line(cb, by_name.get("connectbatch-2t")),
        _ratio_line(cb, by_name.get("pandas"), "pandas"),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_results_file:
        RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_FILE.write_text(text, encoding="utf-8")
        # the figures for bench/summary.py's one table
        RESULTS_FILE.with_name("parse.json").write_text(
            json.dumps(
                {"file": path.name, "size": size, "results": {m.name: asdict(m) for m in results}}, indent=2
            ),
            encoding="utf-8",
        )
        print(f"(written to {RESULTS_FILE.relative_to(REPO_ROOT)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
