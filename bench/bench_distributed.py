"""Distributed mode throughput: files/hour with 1 and 2 workers, and the loader's commit rate.

    python bench/bench_distributed.py [--files 40] [--rows 2000] [--connections 4]

Starts its own redis-server and sshd (tests/integration/redisd.py, sshd.py; as root), puts
`--files` call-conversion files of `--rows` rows across `--connections` SFTP pull connections,
and for each worker count runs a fresh data directory: the coordinator (this process) sends
one pull per connection, real `connectbatch worker` processes (concurrency 1 each) fetch and
parse, and the single loader commits. Timed from the first pull sent until every file is
loaded. The loader's commit rate (files per second of loader time) bounds what N workers can
feed one coordinator: project files/hour(N) ~ min(N x per-worker rate, commit rate x 3600).
The machine is shared and has 2 cores: 2 workers + loader + sshd + redis compete for them.
Prints one line per worker count (and `--json`). Skips (exit 0) without redis-server or root.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # `helpers` (ports), which those modules use
from redisd import available, start_redis  # noqa: E402  (fixture modules, reused as libraries)
from sshd import Sshd, start_sshd  # noqa: E402

CLI = str(Path(sys.executable).parent / "connectbatch")
HEADER = (
    "CampaignId,MediaId,EventDate,ActionTrackerId,CallProvider,CallSessionId,CallerId,"
    "CalledPhoneNumber,CallDuration,TalkDuration"
)


def call_file(prefix: str, rows: int) -> bytes:
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = (
        f"1234,98765,{when},20001,Invoca,{prefix}-{i},+15551234567,+18005550100,185,160" for i in range(rows)
    )
    return ("\n".join([HEADER, *body]) + "\n").encode()


def one(
    server: Sshd,
    redis_url: str,
    workers: int,
    files: int,
    rows: int,
    connections: int,
    backlog: bool | None = None,
) -> dict[str, Any]:
    """Files/hour with `workers` workers and the loader running; or, with `backlog` (True:
    group commit, False: one file at a time), the loader alone on a backlog: every pull and
    parse task already done when it starts, timed from its first step until all is loaded."""
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator
    from connectbatch.models import Connection, Direction, Method, Methodology
    from connectbatch.pipeline import group
    from connectbatch.services import CredentialInput, Services
    from connectbatch.services.base import ServiceBase
    from connectbatch.settings import Settings
    from connectbatch.transfer.specs import SftpSpec

    ServiceBase.default_partner = "Bench partner"
    home = Path(tempfile.mkdtemp(prefix="cb-bench-dist-"))
    settings = replace(Settings(home=home), mode="distributed", redis_url=redis_url, visibility_timeout=90)
    services = Services(settings)
    old = time.time() - 7200
    made = []
    for c in range(connections):
        folder = server.make_folder(f"bench{workers}-{c}-")
        for f in range(files // connections):
            server.put(folder, f"Calls_{c}_{f}.csv", call_file(f"w{workers}c{c}f{f}", rows), old)
        draft = Connection(
            f"Bench {c}", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
            host=server.host, port=server.port, folder=str(folder), pattern="Calls_*.csv",
            transfer=SftpSpec(),
        )  # fmt: skip
        made.append(services.create_connection(draft, CredentialInput("p", server.user, server.password))[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
    env.update(CONNECTBATCH_HOME=str(home), CONNECTBATCH_MODE="distributed", CONNECTBATCH_REDIS_URL=redis_url)
    procs = [
        subprocess.Popen(
            [CLI, "worker", "--name", f"bench{i}", "--concurrency", "1", "--loglevel", "WARNING"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in range(workers)
    ]
    coordinator = Coordinator(services, make_app(settings))
    if backlog is None:
        coordinator.start()
    groupable = group.groupable
    try:
        time.sleep(5)  # the workers start (imports) before the clock does
        started = time.perf_counter()
        for c in made:
            coordinator.dispatch_pull(c, "manual")
        if backlog is not None:
            if not backlog:
                group.groupable = lambda connection: False  # type: ignore[assignment]
            if not coordinator.wait_finished("pull", 1800):
                raise SystemExit("the pulls did not finish within 30 minutes")
            loader = time.perf_counter()
            coordinator.step()  # the listings recorded, the parses sent
            loader = time.perf_counter() - loader
            if not coordinator.wait_finished("parse", 1800):
                raise SystemExit("the parses did not finish within 30 minutes")
            started = time.perf_counter()
            while coordinator.step():
                pass
            seconds = time.perf_counter() - started + loader
            if not coordinator.idle():
                raise SystemExit("the backlog did not load")
        elif not coordinator.wait_idle(1800):
            raise SystemExit("the files did not load within 30 minutes")
        else:
            seconds = time.perf_counter() - started
    finally:
        group.groupable = groupable  # type: ignore[assignment]
        coordinator.stop()
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)
    return {
        "workers": workers, "files": coordinator.loaded, "rows_per_file": rows, "seconds": round(seconds, 2),
        "files_per_hour": round(coordinator.loaded / seconds * 3600),
        "loader_commits_per_second": round(coordinator.loaded / coordinator.commit_seconds, 1),
        "together": coordinator.together, "backlog": backlog, "load_average": os.getloadavg()[0],
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not available() or os.geteuid() != 0:
        print("bench_distributed: skipped (needs redis-server and root for the test sshd)")
        return 0
    redis = start_redis()
    server = start_sshd()
    results = []
    try:
        for workers in (1, 2):
            result = one(server, redis.url, workers, args.files, args.rows, args.connections)
            results.append(result)
            if not args.json:
                print(
                    f"{workers} worker(s): {result['files']} files x {args.rows} rows "
                    f"in {result['seconds']} s = "
                    f"{result['files_per_hour']:,} files/hour; "
                    f"loader {result['loader_commits_per_second']} files/s of its time, "
                    f"{result['together']} files by group commit "
                    f"(load average {result['load_average']:.1f}, 2 shared cores)"
                )
        for grouped in (True, False):  # what the one loader can take when work piles up
            result = one(server, redis.url, 1, args.files, args.rows, args.connections, backlog=grouped)
            results.append(result)
            if not args.json:
                print(
                    f"loader alone on a backlog of {result['files']} parsed files, "
                    f"{'group commit' if grouped else 'one file at a time'}: {result['seconds']} s = "
                    f"{result['files'] / result['seconds']:.1f} files/s"
                )
    finally:
        server.stop()
        redis.stop()
    if args.json:
        print(json.dumps(results))
    results_dir = Path(__file__).resolve().parent / "results"  # for bench/summary.py
    results_dir.mkdir(exist_ok=True)
    (results_dir / "distributed.json").write_text(json.dumps({"rows": args.rows, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
