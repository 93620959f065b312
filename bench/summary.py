"""One table of the throughput goals (issue 13) from what the benchmarks of this `make bench`
run measured: each bench_*.py leaves its figures in bench/results/<name>.json, and this reads
them back, so every figure in the table comes from the same run on the same machine.

    python bench/summary.py

A goal whose benchmark did not run (or failed) reads "not measured". The table is also
written to bench/results/summary.md, with the date and the machine.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from benchkit import RESULTS

Row = tuple[str, str, str, bool | None]  # what, measured, goal, met


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _small_files(d: dict[str, Any]) -> list[Row]:
    s = d["stream"]
    return [
        (
            f"200-row files one after another, one process ({s['files']} files)",
            f"{s['ours']:.1f} files/s (DuckDB's own INSERT from read_csv: {s['duckdb_open']:.1f}/s "
            f"on an open connection, {s['duckdb_reopen']:.1f}/s opening per file); "
            f"{s['opens']} database opens"
            + (f"; the least DuckDB work a run needs, alone: {s['floor']:.1f}/s" if "floor" in s else ""),
            ">= 50 files/s",
            s["ours"] >= 50,
        ),
        *(
            [
                (
                    "as many other 200-row files waiting together (push burst, `ingest F1 F2 ...`): "
                    "group commit, each its own run",
                    f"{s['group']:.1f} files/s",
                    ">= 50 files/s",
                    s["group"] >= 50,
                )
            ]
            if "group" in s
            else []
        ),
        *(
            [
                (
                    f"the same on a connection already holding {d['history']['stored']:,} rows "
                    f"({d['history']['files']} files)",
                    f"{d['history']['ours']:.1f} files/s",
                    "(for reference: does a file's cost grow with history?)",
                    None,
                )
            ]
            if "history" in d
            else []
        ),
        (
            "first ingest after `serve` starts vs a later one",
            f"{d['warm']['first']:.2f} s vs {d['warm']['later']:.2f} s",
            "<= later + 1 s",
            d["warm"]["first"] <= d["warm"]["later"] + 1,
        ),
        (
            "header of 400,000 names -> ParseError",
            f"{d['wide']['cython']:.2f} s",
            "< 1 s",
            d["wide"]["cython"] < 1,
        ),
    ]


def _big_file(d: dict[str, Any]) -> list[Row]:
    ours, peer, size = d["ours"], d["duckdb"], d["size"]
    ratio = ours["whole"] / peer["seconds"]
    growth = ours["growth_kb"] * 1024 / size
    return [
        (
            f"{ours['rows_accepted'] + ours['rows_rejected']:,} rows / {size / 1e6:,.0f} MB whole ingest "
            f"vs DuckDB CREATE TABLE AS read_csv ({d['threads']} threads)",
            f"{ours['whole']:.2f} s vs {peer['seconds']:.2f} s = {ratio:.2f}x",
            "<= 0.6x",
            ratio <= 0.6,
        ),
        (
            "peak memory growth during that ingest",
            f"{growth:.2f}x the file (DuckDB's load: {peer['growth_kb'] * 1024 / size:.2f}x)",
            "<= 1.5x",
            growth <= 1.5,
        ),
    ]


def _validation(d: dict[str, Any]) -> list[Row]:
    rows = []
    for b in d["batches"]:
        rows.append(
            (
                f"validation of {b['rows']:,} rows: evaluator vs great-expectations",
                f"{b['columnar'] * 1000:,.1f} ms vs {b['gx'] * 1000:,.0f} ms "
                f"({b['gx'] / b['columnar']:.0f}x); outcomes identical: {'yes' if b['identical'] else 'NO'}",
                "identical outcomes, columnar speed",
                bool(b["identical"]),
            )
        )
    return rows


def _parse(d: dict[str, Any]) -> list[Row]:
    seconds = {name: r["seconds"] for name, r in d["results"].items() if r.get("status") == "ok"}
    rows: list[Row] = []
    ours1 = seconds.get("connectbatch")
    ours2 = seconds.get("connectbatch-2t")
    arrow1 = seconds.get("pyarrow-1t")
    if ours1 and arrow1:
        rows.append(
            (
                "parse vs pyarrow.csv 1 thread (typed, same bytes)",
                f"{ours1:.2f} s vs {arrow1:.2f} s = {arrow1 / ours1:.2f}x the speed",
                ">= 2x",
                arrow1 / ours1 >= 2,
            )
        )
    if ours1 and ours2:
        rows.append(
            (
                "parse on 2 threads vs its own 1 thread",
                f"{ours2:.2f} s vs {ours1:.2f} s = {ours1 / ours2:.2f}x",
                ">= 1.8x",
                ours1 / ours2 >= 1.8,
            )
        )
    best = ours2 or ours1
    if best:
        peers = ", ".join(
            f"{name} {seconds[name]:.2f} s" for name in ("pyarrow-mt", "polars", "duckdb") if name in seconds
        )
        rows.append(("parse, best ConnectBatch vs peers", f"{best:.2f} s; {peers}", "(for reference)", None))
    return rows


def _pages(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for store, label in (("demo", "demo"), ("large", "1M call rows")):
        timings = d.get(store) or {}
        screens = {name: t for name, t in timings.items() if ":" not in name}
        for kind, what in (("navigation", "opened from the menu"), ("new_session", "new browser session")):
            if not screens:
                continue
            slowest = max(screens, key=lambda name, k=kind: screens[name][k])  # type: ignore[misc]
            seconds = screens[slowest][kind]
            rows.append(
                (
                    f"slowest of {len(screens)} app screens, {what} ({label})",
                    f"{seconds:.2f} s ({slowest})"
                    + (f"; a bare Streamlit page alone: {d['floor']:.2f} s" if kind == "new_session" else ""),
                    "<= 1.5 s",
                    seconds <= 1.5,
                )
            )
        actions = {name: t["navigation"] for name, t in timings.items() if ":" in name}
        if actions:
            slowest = max(actions, key=lambda name: actions[name])
            rows.append(
                (f"slowest filter or button ({label})", f"{actions[slowest]:.2f} s ({slowest})", "<= 0.5 s",
                 actions[slowest] <= 0.5)
            )  # fmt: skip
    return rows


def _distributed(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for r in d["runs"]:
        if r.get("backlog") is not None:  # the loader alone on parsed files waiting for it
            how = "group commit" if r["backlog"] else "one file at a time"
            rows.append(
                (
                    f"distributed mode: the one loader on a backlog of {r['files']} parsed "
                    f"{d['rows']:,}-row files, {how}",
                    f"{r['files'] / r['seconds']:.1f} files/s (load average {r['load_average']:.1f})",
                    "(what N workers can feed)",
                    None,
                )
            )
            continue
        rows.append(
            (
                f"distributed mode (issue 14), {r['workers']} worker(s), {d['rows']:,}-row files",
                f"{r['files_per_hour']:,} files/hour; "
                f"loader {r['loader_commits_per_second']} files/s of its time "
                f"(load average {r['load_average']:.1f})",
                "(to project N workers)",
                None,
            )
        )
    return rows


def _pull_many(d: dict[str, Any]) -> list[Row]:
    g, a = d["grouped"], d["alone"]
    return [
        (
            f"a pull run that finds {g['files']} files of {g['rows']} rows (SFTP, OpenSSH): "
            "fetch, ingest and delete each",
            f"{g['files_per_s']:.1f} files/s (one file at a time, as before: {a['files_per_s']:.1f}/s)",
            ">= 50 files/s",
            g["files_per_s"] >= 50,
        )
    ]


def _push_many(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"a partner uploading {d['files']} files of {d['rows']} rows one after another to our SFTP "
            "server (`serve`), each `put` after the one before: until the last is loaded",
            f"{d['files_per_s']:.1f} files/s ({d['seconds']:.2f} s, uploading {d['uploading']:.2f} s of it)",
            ">= 50 files/s",
            d["files_per_s"] >= 50,
        )
    ]


SOURCES: list[tuple[str, Callable[[dict[str, Any]], list[Row]]]] = [
    ("overhead", _small_files),
    ("push_many", _push_many),
    ("pull_many", _pull_many),
    ("pipeline", _big_file),
    ("parse", _parse),
    ("validation", _validation),
    ("pages", _pages),
    ("distributed", _distributed),
]


def main() -> int:
    lines = [
        "# Throughput goals (issue 13), this run",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()}",
        "",
        "| work | measured | goal | met |",
        "|---|---|---|---|",
    ]
    for name, rows_of in SOURCES:
        data = _load(name)
        if data is None:
            lines.append(f"| {name} | not measured (bench/results/{name}.json missing) | | |")
            continue
        try:
            rows = rows_of(data)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            lines.append(f"| {name} | unreadable results ({type(exc).__name__}: {exc}) | | |")
            continue
        for what, measured, goal, met in rows:
            mark = "" if met is None else ("yes" if met else "**no**")
            lines.append(f"| {what} | {measured} | {goal} | {mark} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
