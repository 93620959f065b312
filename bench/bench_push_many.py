"""A partner uploading small files one after another to our hosted SFTP server: files/s
loaded, from the first upload's start until the last file's actions exist.

    python bench/bench_push_many.py [--files 100] [--rows 200]

The "one after another" of issue 13 as a partner brings it: a script that logs in once and
`put`s each file when the one before is written (paramiko's SFTPClient.put, as in
bench_sftp_push.py), to a real `connectbatch serve` process (scheduler and hosted servers, as
in production) on a fresh data folder with one "Push to us" SFTP connection. Each upload is
one run (staged, ledger, parsed, validated, loaded, actions, results file), and the upload
is removed from the push folder once its run committed; the clock stops when the folder is
empty. How uploads that arrive while others are being loaded are taken is the server's
business (the gateway takes the waiting ones of a connection together, group commit, each its
own run): the figure is what a partner sees. After `serve` stopped, every run is checked
Completed with its rows and actions.

`bench_overhead.py`'s "one after another" row is the other one after another: one caller
ingesting a file and waiting for its run before it gives the next (`connectbatch ingest F`
in a loop), which no server's queue can help. Results go to bench/results/push_many.json for
bench/summary.py."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from benchkit import save, small_files  # noqa: E402 (after the path set-up)

START_SECONDS = 60.0  # `serve` answering on its port (imports, migrations, the warm-up)
LOAD_SECONDS = 300.0  # every upload loaded: a broken server must not hang `make bench`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                said = log.read_text()[-3000:]
                raise SystemExit(f"bench_push_many: `serve` did not start:\n{said}") from None
            time.sleep(0.1)


def measure(files: int, rows: int) -> dict[str, Any]:
    import paramiko

    home = tempfile.mkdtemp(prefix="cb-bench-push-")
    try:
        os.environ["CONNECTBATCH_HOME"] = home
        os.environ["CONNECTBATCH_MAX_AGE_DAYS"] = "100000"  # the generated dates are early 2026
        from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
        from connectbatch.services import Services

        services = Services()
        services.add_partner("bench", "brand")
        draft = Connection(
            "bench push", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
            lock_days=3650,
        )  # fmt: skip
        bench, provisioned = services.create_connection(draft, partner="bench")
        assert provisioned is not None
        warm, *paths = small_files(home, files + 1, seed=7000, rows=rows)
        port = _free_port()
        log = Path(home) / "serve.log"
        env = {**os.environ, "CONNECTBATCH_SFTP_PORT": str(port), "CONNECTBATCH_FTP_PORT": "0",
               "PYTHONPATH": str(REPO_ROOT)}  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "connectbatch", "serve"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        push = Path(home) / "push" / str(bench.id)
        try:
            _wait_port(port, process, log)
            transport = paramiko.Transport(("127.0.0.1", port))
            transport.connect(username=provisioned.username, password=provisioned.password)
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None

            def wait_loaded() -> None:
                deadline = time.monotonic() + LOAD_SECONDS
                while any(p.is_file() for p in push.iterdir()):
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise SystemExit(f"bench_push_many: uploads not loaded:\n{log.read_text()[-3000:]}")
                    time.sleep(0.002)

            sftp.put(str(warm), warm.name)  # the server's first load (the engine's first use)
            wait_loaded()
            started = time.perf_counter()
            for path in paths:
                sftp.put(str(path), path.name)
            uploaded = time.perf_counter() - started
            wait_loaded()
            seconds = time.perf_counter() - started
            sftp.close()
            transport.close()
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        runs = services.runs(bench.id, limit=files + 10)
        done = [
            r for r in runs if r.status is RunStatus.COMPLETED and r.rows_accepted + r.rows_rejected == rows
        ]
        assert len(done) == files + 1, [(r.status, r.reason) for r in runs if r not in done][:5]
        return {"files": files, "rows": rows, "seconds": seconds, "uploading": uploaded,
                "files_per_s": files / seconds, "runs": len(done) - 1}  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args(argv)
    figures = measure(args.files, args.rows)
    print(f"# A partner uploading {args.files} files of {args.rows} rows one after another (SFTP)\n")
    print("| uploads | loaded after | of which uploading | files/s |\n|---|---|---|---|")
    print(f"| {figures['files']} | {figures['seconds']:.2f} s | {figures['uploading']:.2f} s | "
          f"{figures['files_per_s']:.1f} |")  # fmt: skip
    save("push_many", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
