"""A pull run that finds many small files: files/s, grouped (group commit) vs one at a time.

    python bench/bench_pull_many.py [--files 100] [--rows 200]

Run as root: it starts its own OpenSSH sshd and test user (tests/integration/sshd.py), as
bench_sftp.py does. The partner's folder holds `--files` generated call-conversion files of
`--rows` rows each (bench/generate.py, each its own seed, dated in 2026 so nothing is held as
late). One pull run of an SFTP pull connection takes them all: list, fetch, stage, ledger,
parse, validate, load, actions, results file, and delete from the partner's folder. Timed
from the run's start to its end, on a fresh data folder each time, after a first pull of one
file (imports, migrations and the engine's first use are not per file).

* **grouped**: as ConnectBatch pulls (`pipeline/group.ingest_in_run`: the fetched files'
  ledger entries in one commit, their loads in another, up to `group.GROUP_MAX_FILES`).
* **one at a time**: the same with `group.GROUP_MAX_FILES = 1`, how a pull ingested its files
  before (two commits and ~20 DuckDB statements a file).

Issue 13's goal for small files is 50 files/s. Results go to bench/results/pull_many.json for
bench/summary.py. Each measurement runs in a fresh subprocess (`--child`)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # `helpers` (ports), which those modules use

from benchkit import report, run_child, save  # noqa: E402 (after the path set-up)


def _pull(files: int, rows: int, group_max: int) -> dict[str, Any]:
    import generate
    from sshd import start_sshd

    home = tempfile.mkdtemp(prefix="cb-bench-pull-")
    os.environ["CONNECTBATCH_HOME"] = home
    os.environ["CONNECTBATCH_MAX_AGE_DAYS"] = "100000"  # the generated dates are early 2026
    from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
    from connectbatch.pipeline import group
    from connectbatch.services import CredentialInput, Services
    from connectbatch.transfer.specs import SftpSpec

    group.GROUP_MAX_FILES = group_max
    server = start_sshd()
    try:
        folder = server.make_folder("bench-pull-")
        services = Services()
        services.add_partner("bench", "brand")
        draft = Connection(
            "bench pull", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
            host=server.host, port=server.port, folder=str(folder), pattern="calls_*.csv",
            transfer=SftpSpec(), after_success="delete", lock_days=3650,  # type: ignore[arg-type]
        )  # fmt: skip
        login = CredentialInput("partner", server.user, server.password)
        services.create_connection(draft, login, partner="bench")
        old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        scratch = Path(home) / "generated"
        scratch.mkdir()

        def drop(seed: int, count: int) -> None:
            for i in range(count):
                path = scratch / f"calls_{seed + i}.csv"
                generate.generate(path, rows=rows, seed=seed + i)
                server.put(folder, path.name, path.read_bytes(), old)

        drop(5000, 1)
        first = services.pull("bench pull")  # imports, migrations, the first use
        assert first.status is RunStatus.COMPLETED, first.reason
        drop(6000, files)
        t = time.perf_counter()
        run = services.pull("bench pull")
        seconds = time.perf_counter() - t
        assert run.status is RunStatus.COMPLETED and run.files_loaded == files, (run.status, run.reason)
        assert not any(folder.iterdir())
        return {"files": files, "rows": rows, "seconds": seconds, "files_per_s": files / seconds}
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--child", choices=("grouped", "alone"))
    args = parser.parse_args(argv)
    if args.child:
        report(_pull(args.files, args.rows, 100 if args.child == "grouped" else 1))
        return 0
    if os.geteuid() != 0:  # a skipped row, not a failed `make bench`
        print("bench_pull_many: skipped, needs root (it starts its own sshd and a user)", file=sys.stderr)
        return 0
    figures = {}
    for kind in ("grouped", "alone"):
        figures[kind] = run_child(__file__, kind, ["--files", str(args.files), "--rows", str(args.rows)])
    print(f"# A pull run that finds {args.files} files of {args.rows} rows (SFTP, OpenSSH on 127.0.0.1)\n")
    print("| ingest | seconds | files/s |\n|---|---|---|")
    for kind, label in (("grouped", "grouped (group commit)"), ("alone", "one file at a time")):
        f = figures[kind]
        print(f"| {label} | {f['seconds']:.2f} | {f['files_per_s']:.1f} |")
    save("pull_many", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
