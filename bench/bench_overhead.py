"""Per-file overhead that is not parsing: the wide-header error, the first ingest after the
engine starts, database opens per ingest.

    python bench/bench_overhead.py [--names N]

Each measurement runs in a fresh subprocess (``--child KIND``) so one measurement's imports
and caches cannot help the next; the child prints one ``BENCH_RESULT {json}`` line.

* **wide header**: a header of 400,000 unknown names and no required column, parsed on both
  cores until the ParseError ("the header lacks required ... columns"), timed after imports.
  Issue 13 goal: < 1 s (difflib per missing column took 13 s).
* **first ingest after start**: a fresh data directory, `Engine.start(servers=False)` as
  `connectbatch serve --no-servers` runs it, its validation warm-up awaited, then 200-row
  call-conversion files ingested one after another: the first one's seconds beside the median
  of the later ones. The same without an engine (no warm-up: a one-shot CLI process) shows what
  the warm-up saves. Issue 13 goal: first <= later + 1 s. The last ingest's database opens
  (`Database.opens`) are counted too: goal one per file.
* **small files, one after another**: `--stream` (100) 200-row files ingested back to back in
  one process after `Engine.start` (stage, ledger, parse, validate, load, actions, results), as
  files/s; beside it DuckDB's own `INSERT INTO t SELECT * FROM read_csv(file)` per file, which
  validates nothing, on one open connection and with an open and close per file.
  Issue 13 goal: >= 50 files/s.
* **small files on a long history**: the same, on a connection that already holds `--rows`
  (1M) rows from one big file (stored as a Parquet part): what a file's "already loaded" check
  and its actions cost once a partner has months of data (issue 13: they scanned every stored
  row, 94 ms a file at 1M rows; the key index, store/keys.py, made it 45 ms).
* **a backlog of small files**: as many other 200-row files waiting together, ingested by one
  `Services.ingest_files` call (group commit, `pipeline/group.py`: one commit for their
  ledger entries, one for their loads, each file its own run), as files/s.
* **what one DuckDB call costs** (`--child statement-costs`): a trivial SELECT, point
  SELECTs of 1 and 36 columns, one-row INSERTs with and without constraints, transactions,
  commits on a file, in memory and without fsync, Arrow inserts: why a statement costs ~1 ms.
* **statements per small file**: the same ingest with every DuckDB cursor wrapped to count
  what it is asked (statements, registers, begins and commits), averaged over `--counted`
  files: a figure that, unlike files/s, does not move with the machine's load.

Results also go to bench/results/overhead.json for bench/summary.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from benchkit import report, run_child, save  # noqa: E402 (after the path set-up)


def _wide_header(names: int) -> dict[str, Any]:
    from connectbatch.errors import ParseError
    from connectbatch.parser.api import parse_bytes

    header = [f"Metric{i}" for i in range(names)]
    header[-2] = "Campaign_Id"
    data = (",".join(header) + "\n1\n").encode()
    out: dict[str, Any] = {}
    for engine in ("cython", "python"):
        t = time.perf_counter()
        try:
            parse_bytes(data, "call_conversions", engine=engine)  # type: ignore[arg-type]
        except ParseError as exc:
            out[f"{engine}_chars"] = len(str(exc))
        out[engine] = time.perf_counter() - t
    return out


def _first_ingest(files: int, warm: bool) -> dict[str, Any]:
    import tempfile

    from benchkit import bench_services, small_files

    with tempfile.TemporaryDirectory(prefix="cb-bench-") as home:
        services = bench_services(home)
        from connectbatch.engine import Engine

        paths = small_files(home, files, seed=1000)
        engine = None
        start = 0.0
        if warm:
            engine = Engine(services)
            t = time.perf_counter()
            engine.start(servers=False)
            assert engine.warming is not None
            engine.warming.join()
            start = time.perf_counter() - t
        seconds = []
        opens = 0
        for path in paths:
            before = services.db.opens
            t = time.perf_counter()
            services.ingest_file("bench", path)
            seconds.append(time.perf_counter() - t)
            opens = services.db.opens - before
        if engine is not None:
            engine.stop()
    later = statistics.median(seconds[1:])
    return {"start": start, "first": seconds[0], "later": later, "opens": opens}


def _stream(files: int) -> dict[str, Any]:
    import tempfile

    import duckdb
    from benchkit import bench_services, small_files

    with tempfile.TemporaryDirectory(prefix="cb-bench-") as home:
        services = bench_services(home)
        from connectbatch.engine import Engine

        paths = small_files(home, files, seed=2000)
        engine = Engine(services)
        engine.start(servers=False)
        assert engine.warming is not None
        engine.warming.join()
        services.ingest_file("bench", paths[0])  # the first one is measured elsewhere
        before = services.db.opens
        t = time.perf_counter()
        for path in paths[1:]:
            run = services.ingest_file("bench", path)
            assert run.files_loaded == 1, run.reason
        ours = (len(paths) - 1) / (time.perf_counter() - t)
        opens = services.db.opens - before
        # the same number of other files again, waiting together: one call, group commit
        backlog = small_files(home, files, seed=4000)[1:]
        t = time.perf_counter()
        runs = services.ingest_files("bench", list(backlog))
        group = len(backlog) / (time.perf_counter() - t)
        assert all(r.files_loaded == 1 for r in runs), [r.reason for r in runs]
        engine.stop()

        def duckdb_load(per_file_open: bool) -> float:
            db = str(Path(home) / ("peer_open.duckdb" if per_file_open else "peer.duckdb"))
            con = duckdb.connect(db)
            con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{paths[0]}', ignore_errors=true)")
            t = time.perf_counter()
            for path in paths[1:]:
                if per_file_open:
                    con.close()
                    con = duckdb.connect(db)
                con.execute(f"INSERT INTO t SELECT * FROM read_csv('{path}', ignore_errors=true)")
            rate = (len(paths) - 1) / (time.perf_counter() - t)
            con.close()
            return rate

        return {
            "files": len(paths) - 1, "ours": ours, "opens": opens, "group": group,
            "duckdb_open": duckdb_load(False), "duckdb_reopen": duckdb_load(True),
            "floor": _least_db_work(home, paths),
        }  # fmt: skip


def _least_db_work(home: str, paths: list[Path]) -> float:
    """Files/s of the least DuckDB work a file's run needs, on the same files: the run and
    its ledger entry in one commit (recorded before processing), the "already loaded" check,
    then the rows, their key hashes, their actions and the three status rows in a second
    commit (a run is one transaction). 12 statements on slim tables with no rejects,
    validation results, header or mapping; the files are read by pyarrow beforehand and
    nothing is validated. What the small-file goal meets on this machine before any parse,
    validation or results file (issue 13)."""
    import duckdb
    import pyarrow.csv as pcsv

    tables = [pcsv.read_csv(p) for p in paths]
    key = tables[0].column_names[0]
    con = duckdb.connect(str(Path(home) / "floor.duckdb"))
    cur = con.cursor()
    cur.execute("SET GLOBAL TimeZone = 'UTC'")
    for ddl in (
        "CREATE SEQUENCE s_runs", "CREATE SEQUENCE s_files", "CREATE SEQUENCE s_actions",
        "CREATE TABLE runs (id BIGINT PRIMARY KEY DEFAULT nextval('s_runs'), connection_id BIGINT, "
        "status VARCHAR, started_at TIMESTAMPTZ DEFAULT current_timestamp, finished_at TIMESTAMPTZ, "
        "rows_accepted BIGINT DEFAULT 0, actions_created BIGINT DEFAULT 0)",
        "CREATE TABLE files (id BIGINT PRIMARY KEY DEFAULT nextval('s_files'), connection_id BIGINT, "
        "run_id BIGINT, name VARCHAR, size BIGINT, sha256 VARCHAR, state VARCHAR, rows_accepted BIGINT)",
        "CREATE TABLE conns (id BIGINT PRIMARY KEY, status VARCHAR, last_active TIMESTAMPTZ)",
        "INSERT INTO conns VALUES (1, 'None', NULL)",
        "CREATE TABLE keys (connection_id BIGINT, key_hash UBIGINT, file_id BIGINT)",
        "CREATE TABLE actions (id BIGINT, connection_id BIGINT, file_id BIGINT, source_key VARCHAR, "
        "amount DECIMAL(18,2), status VARCHAR, lock_at TIMESTAMPTZ)",
    ):  # fmt: skip
        cur.execute(ddl)
    cur.register("_rows", tables[0])
    cur.execute("CREATE TABLE data AS SELECT *, 0::BIGINT AS file_id FROM _rows LIMIT 0")
    cur.unregister("_rows")

    def one(name: str, rows: Any) -> None:
        cur.begin()
        run = cur.execute(
            "INSERT INTO runs (connection_id, status) VALUES (1, 'In Progress') RETURNING id"
        ).fetchall()[0][0]
        file_id = cur.execute(
            "INSERT INTO files (connection_id, run_id, name, size, sha256, state) "
            "VALUES (1, ?, ?, 0, '', 'fetched') RETURNING id", [run, name],
        ).fetchall()[0][0]  # fmt: skip
        cur.execute("UPDATE conns SET status = 'In Progress', last_active = now() WHERE id = 1")
        cur.commit()
        cur.register("_rows", rows)
        seen = f'SELECT hash("{key}") FROM _rows'
        cur.execute(f"SELECT count(*) FROM keys WHERE connection_id = 1 AND key_hash IN ({seen})").fetchall()
        cur.begin()
        cur.execute(f"INSERT INTO data SELECT *, {file_id} FROM _rows")
        cur.execute(f'INSERT INTO keys SELECT 1, hash("{key}"), {file_id} FROM _rows')
        cur.execute(
            f"INSERT INTO actions SELECT nextval('s_actions'), 1, {file_id}, \"{key}\"::VARCHAR, 1, "
            "'PENDING', now() FROM _rows"
        )
        cur.execute("UPDATE files SET state = 'loaded', rows_accepted = 200 WHERE id = ?", [file_id])
        cur.execute(
            "UPDATE runs SET status = 'Completed', finished_at = now(), rows_accepted = 200, "
            "actions_created = 200 WHERE id = ?", [run],
        )  # fmt: skip
        cur.execute("UPDATE conns SET status = 'Completed', last_active = now() WHERE id = 1")
        cur.commit()
        cur.unregister("_rows")

    one(paths[0].name, tables[0])
    t = time.perf_counter()
    for path, rows in zip(paths[1:], tables[1:], strict=True):
        one(path.name, rows)
    rate = (len(paths) - 1) / (time.perf_counter() - t)
    con.close()
    return rate


def _stream_on_history(files: int, rows: int) -> dict[str, Any]:
    import tempfile

    from bench_parse import ensure_file
    from benchkit import bench_services, small_files

    big = ensure_file(rows, 42)
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as home:
        services = bench_services(home)
        from connectbatch.engine import Engine

        engine = Engine(services)
        engine.start(servers=False)
        assert engine.warming is not None
        engine.warming.join()
        loaded = services.ingest_file("bench", big)
        assert loaded.files_loaded == 1, loaded.reason
        paths = small_files(home, files, seed=6000)
        t = time.perf_counter()
        for path in paths:
            run = services.ingest_file("bench", path)
            assert run.files_loaded == 1, run.reason
        rate = len(paths) / (time.perf_counter() - t)
        engine.stop()
    return {"files": len(paths), "stored": loaded.rows_accepted, "ours": rate}


def _statement_costs() -> dict[str, float]:
    """Milliseconds per DuckDB call on an open file, best of 3 runs of 200: why a small file's
    ~20 statements cost ~1 ms each (issue 13). Rows: a trivial SELECT; a point SELECT of 1
    and of 36 columns (a query's cost grows with the columns it returns); one-row INSERTs
    (no constraint, PRIMARY KEY + UNIQUE, an index) in their own transaction; an empty
    transaction; five INSERTs in one transaction, one call each or one execute() string; the
    commit on a file (its log written and fsynced) beside one in memory and one with
    fsync_mode NONE (not used: a crash could lose a committed run); an Arrow insert through
    register/unregister beside one through a replacement scan (not used: a wrapped cursor
    hides the variable)."""
    import tempfile

    import duckdb
    import pyarrow as pa

    def best(fn: Any, n: int = 200) -> float:
        fn()
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter() - t) / n * 1000)
        return round(min(runs), 3)

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as home:
        con = duckdb.connect(str(Path(home) / "x.duckdb"))
        cur = con.cursor()
        cols = ", ".join(f"c{i} VARCHAR" for i in range(35))
        cur.execute(f"CREATE TABLE wide (id BIGINT PRIMARY KEY, {cols})")
        cur.execute("INSERT INTO wide (id) SELECT range FROM range(100)")
        cur.execute("CREATE TABLE plain (id BIGINT, v VARCHAR)")
        cur.execute("CREATE SEQUENCE s")
        cur.execute("CREATE TABLE keyed (id BIGINT PRIMARY KEY DEFAULT nextval('s'), v VARCHAR UNIQUE)")
        cur.execute("CREATE TABLE indexed (id BIGINT, v VARCHAR)")
        cur.execute("CREATE INDEX indexed_id ON indexed (id)")
        n = [0]

        def nxt() -> int:
            n[0] += 1
            return n[0]

        out["SELECT 1"] = best(lambda: cur.execute("SELECT 1").fetchall())
        out["point SELECT, 1 column"] = best(
            lambda: cur.execute("SELECT c0 FROM wide WHERE id = 7").fetchall()
        )
        out["point SELECT, 36 columns"] = best(
            lambda: cur.execute("SELECT * FROM wide WHERE id = 7").fetchall()
        )
        out["INSERT 1 row, no constraint"] = best(
            lambda: cur.execute("INSERT INTO plain VALUES (?, 'x')", [nxt()])
        )
        out["INSERT 1 row, PRIMARY KEY + UNIQUE"] = best(
            lambda: cur.execute("INSERT INTO keyed (v) VALUES (?)", [str(nxt())])
        )
        out["INSERT 1 row, indexed column"] = best(
            lambda: cur.execute("INSERT INTO indexed VALUES (?, 'x')", [nxt()])
        )

        def empty() -> None:
            cur.begin()
            cur.commit()

        def five(one_string: bool) -> None:
            cur.begin()
            if one_string:
                cur.execute(";".join(f"INSERT INTO plain VALUES ({nxt()}, 'x')" for _ in range(5)))
            else:
                for _ in range(5):
                    cur.execute("INSERT INTO plain VALUES (?, 'x')", [nxt()])
            cur.commit()

        out["begin + commit, nothing written"] = best(empty)
        out["5 INSERTs in one transaction, 5 calls"] = best(lambda: five(False), 100)
        out["5 INSERTs in one transaction, one execute() string"] = best(lambda: five(True), 100)
        table = pa.table(
            {"id": pa.array(range(200), pa.int64()), "v": pa.array([str(i) for i in range(200)])}
        )

        def registered() -> None:
            cur.register("_rows", table)
            cur.execute("INSERT INTO plain SELECT * FROM _rows")
            cur.unregister("_rows")

        def replaced() -> None:
            _rows = table  # read by DuckDB by its name
            cur.execute("INSERT INTO plain SELECT * FROM _rows")

        out["200-row Arrow INSERT, register + unregister"] = best(registered)
        out["200-row Arrow INSERT, replacement scan"] = best(replaced)
        for label, target in (("file", cur), ("memory", duckdb.connect(":memory:"))):
            if label == "memory":
                target.execute("CREATE TABLE plain (id BIGINT, v VARCHAR)")

            def committed(c: Any = target) -> None:
                c.begin()
                c.execute("INSERT INTO plain VALUES (?, 'x')", [nxt()])
                c.commit()

            out[f"begin + 1-row INSERT + commit ({label})"] = best(committed)
        cur.execute("SET fsync_mode = 'NONE'")
        out["begin + 1-row INSERT + commit (file, fsync_mode NONE)"] = best(
            lambda: (cur.begin(), cur.execute("INSERT INTO plain VALUES (?, 'x')", [nxt()]), cur.commit())
        )
        con.close()
    return out


# What a cursor is asked that costs a round trip into DuckDB.
_COUNTED = ("execute", "executemany", "sql", "query", "register", "unregister", "begin", "commit")


class _Counting:
    """A DuckDB cursor that counts the calls in `_COUNTED` (benchmark only)."""

    def __init__(self, cursor: Any, counts: dict[str, int]) -> None:
        # an Arrow table read by name (store/db.py) is a local of the caller of `counted`, not
        # of `counted` itself: DuckDB looks further up the stack than the calling frame
        cursor.execute("SET python_scan_all_frames = true")
        self._cursor = cursor
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._cursor, name)
        if name not in _COUNTED:
            return attr
        kind = "statements" if name not in ("begin", "commit") else name

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            return attr(*args, **kwargs)

        return counted


def _statements(files: int, grouped: bool = False) -> dict[str, Any]:
    import tempfile

    from benchkit import bench_services, small_files

    from connectbatch.store import anchor

    with tempfile.TemporaryDirectory(prefix="cb-bench-") as home:
        services = bench_services(home)
        paths = small_files(home, files + 1, seed=3000)
        services.ingest_file("bench", paths[0])  # migrations and first use are not per file
        counts: dict[str, int] = {}
        cursor, give_back = anchor.Anchor.cursor, anchor.Anchor.give_back
        anchor.Anchor.cursor = lambda self: _Counting(cursor(self), counts)  # type: ignore[method-assign,assignment,return-value]
        anchor.Anchor.give_back = lambda self, c: give_back(self, c._cursor)  # type: ignore[method-assign]
        try:
            if grouped:
                runs = services.ingest_files("bench", list(paths[1:]))
                assert all(r.files_loaded == 1 for r in runs), [r.reason for r in runs]
            for path in [] if grouped else paths[1:]:
                run = services.ingest_file("bench", path)
                assert run.files_loaded == 1, run.reason
        finally:
            anchor.Anchor.cursor, anchor.Anchor.give_back = cursor, give_back  # type: ignore[method-assign]
        return {"files": files, **{k: v / files for k, v in counts.items()}}


def _child(kind: str, args: argparse.Namespace) -> int:
    if kind == "wide-header":
        result = _wide_header(args.names)
    elif kind in ("first-ingest", "first-ingest-cold"):
        result = _first_ingest(args.files, warm=kind == "first-ingest")
    elif kind == "stream":
        result = _stream(args.stream)
    elif kind == "stream-history":
        result = _stream_on_history(args.history_files, args.rows)
    elif kind == "statement-costs":
        result = _statement_costs()
    elif kind in ("statements", "statements-group"):
        result = _statements(args.counted, grouped=kind == "statements-group")
    else:  # pragma: no cover - argparse restricts the choices
        raise SystemExit(f"unknown child {kind}")
    report(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--names", type=int, default=400_000, help="names in the wide header")
    parser.add_argument("--files", type=int, default=6, help="200-row files after the start")
    parser.add_argument("--stream", type=int, default=100, help="200-row files ingested back to back")
    parser.add_argument("--counted", type=int, default=20, help="200-row files whose statements are counted")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows stored before --history-files")
    parser.add_argument("--history-files", type=int, default=40, help="200-row files on that history")
    parser.add_argument(
        "--child",
        choices=[
            "wide-header",
            "first-ingest",
            "first-ingest-cold",
            "stream",
            "stream-history",
            "statements",
            "statements-group",
            "statement-costs",
        ],
        help=argparse.SUPPRESS,
    )
    args, _unknown = parser.parse_known_args(argv)  # `make bench` passes --rows to every script
    if args.child:
        return _child(args.child, args)
    passed = [f"--names={args.names}", f"--files={args.files}", f"--stream={args.stream}"]
    passed += [f"--counted={args.counted}", f"--rows={args.rows}", f"--history-files={args.history_files}"]
    print("# Per-file overhead")
    print()
    print("| work | seconds | note |")
    print("|---|---:|---|")
    wide = run_child(__file__, "wide-header", passed)
    for engine in ("cython", "python"):
        print(
            f"| header of {args.names:,} names -> ParseError ({engine} core) | {wide[engine]:.2f} "
            f"| message {wide.get(f'{engine}_chars', 0):,} chars; goal < 1 s |"
        )
    warm = run_child(__file__, "first-ingest", passed)
    cold = run_child(__file__, "first-ingest-cold", passed)
    print(f"| Engine.start (servers off) + validation warm-up | {warm['start']:.2f} | warm-up in a thread |")
    for label, m in (("after Engine.start", warm), ("without an engine (no warm-up)", cold)):
        print(
            f"| first 200-row ingest {label} | {m['first']:.2f} "
            f"| later ones: median {m['later']:.2f} s; first - later = {m['first'] - m['later']:.2f} s "
            "(goal <= 1 s) |"
        )
    print(f"| database opens in one later ingest | {warm['opens']} | count, not seconds; goal <= 1 |")
    stream = run_child(__file__, "stream", passed)
    print(
        f"| {stream['files']} 200-row files one after another (one process, engine started) "
        f"| {stream['files'] / stream['ours']:.2f} | **{stream['ours']:.1f} files/s**; "
        f"{stream['opens']} database opens in all; goal >= 50 files/s |"
    )
    print(
        f"| a backlog of {stream['files']} other 200-row files waiting together (`ingest_files`, "
        f"group commit; each its own run) | {stream['files'] / stream['group']:.2f} "
        f"| **{stream['group']:.1f} files/s**; goal >= 50 files/s |"
    )
    print(
        f"| DuckDB alone: INSERT ... FROM read_csv per file (validates nothing) "
        f"| {stream['files'] / stream['duckdb_open']:.2f} | {stream['duckdb_open']:.1f} files/s on one "
        f"connection; {stream['duckdb_reopen']:.1f} files/s opening the file each time |"
    )
    if "floor" in stream:
        print(
            f"| the least DuckDB work a file's run needs (2 commits, 12 statements; no parse, "
            f"validation or results file) | {stream['files'] / stream['floor']:.2f} "
            f"| {stream['floor']:.1f} files/s: the ceiling of the one-at-a-time path on this machine |"
        )
    history = run_child(__file__, "stream-history", passed)
    print(
        f"| {history['files']} 200-row files one after another on a connection holding "
        f"{history['stored']:,} rows | {history['files'] / history['ours']:.2f} "
        f"| **{history['ours']:.1f} files/s** (on an empty one: {stream['ours']:.1f}) |"
    )
    counted = run_child(__file__, "statements", passed)
    print(
        f"| DuckDB calls per 200-row file (mean of {counted['files']}) | {counted.get('statements', 0):.1f} "
        f"| statements and registers; {counted.get('begin', 0):.1f} transactions, "
        f"{counted.get('commit', 0):.1f} commits; count, not seconds |"
    )
    grouped = run_child(__file__, "statements-group", passed)
    print(
        f"| DuckDB calls per 200-row file in a group of {grouped['files']} "
        f"| {grouped.get('statements', 0):.1f} "
        f"| statements and registers; {grouped.get('begin', 0):.2f} transactions, "
        f"{grouped.get('commit', 0):.2f} commits per file; count, not seconds |"
    )
    costs = run_child(__file__, "statement-costs", passed)
    print()
    print("| one DuckDB call on an open file (best of 3 x 200) | ms |")
    print("|---|---:|")
    for label, ms in costs.items():
        print(f"| {label} | {ms:.3f} |")
    save(
        "overhead",
        {
            "wide": wide,
            "warm": warm,
            "cold": cold,
            "stream": stream,
            "history": history,
            "statements": counted,
            "grouped": grouped,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
