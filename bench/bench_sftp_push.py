"""Benchmark SFTP push: uploading to ConnectBatch's hosted SFTP server vs to OpenSSH's sshd.

Run standalone (the sshd side needs root: it starts its own sshd and test user, see
tests/integration/sshd.py; without root only our server is measured)::

    python bench/bench_sftp_push.py [--size-mb 200] [--repeat 3] [--clients paramiko,sftp]
                                    [--json] [--output FILE.md] [--require-ratio 0.8]

What it measures, and why this way:

* **Same file, same clients, two servers.** A 200 MiB file of random bytes (incompressible)
  is uploaded by (1) paramiko's `SFTPClient.put()` with all defaults (what a partner's Python
  script does; the issue's reference client) and (2) OpenSSH's `sftp` command in batch mode
  (`put`, password login through SSH_ASKPASS), to both servers. The `sftp` row shows what the
  server can take when the client is not the bottleneck.
* **Our server runs in its own process**, as sshd does: in the client's process the two would
  share one GIL and we would measure that instead of the server.
* **No ingest.** Our server is given a stub gateway that logs any user in with a writable
  account in a scratch folder and ignores finished uploads: the benchmark measures the
  transfer, not the 200 MB parse (the tests use the real gateway).
* **End to end, interleaved, best of N.** Each upload is timed from connecting to the remote
  file being closed; each round runs every (client, server) pair once in turn, so a noisy
  neighbour slows all alike; the best round per pair counts. Every uploaded copy is checked
  against the source by SHA-256.

The target (issue 5) is our server receiving >= 0.8x as fast as sshd, with paramiko's put().
The script exits 0 either way (it is a measurement); `--require-ratio R` exits 1 below R.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
MB = 1_000_000  # speeds in MB = 10**6 bytes, as in the other benchmarks
TARGET_RATIO = 0.8
BENCH_PASSWORD = "bench-Push-pass-7Qx2"  # a throw-away login on a scratch server on 127.0.0.1

sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # `helpers` (ports), which those modules use
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sftp import emit, sha256  # noqa: E402  (the pull benchmark's helpers)


@dataclass(frozen=True)
class Target:
    """A server to upload to: where, as whom, into which folder, and where the file lands."""

    name: str
    label: str
    host: str
    port: int
    user: str
    password: str
    remote_folder: str  # as the client names it
    local_folder: Path  # where the uploaded file appears on this machine


@dataclass
class Pair:
    """One (client, server) combination and its timings."""

    client: str
    target: Target
    upload: Callable[[Path, str], str]  # uploads, returns the negotiated cipher/MAC
    times: list[float] = field(default_factory=list)
    note: str = ""

    def best(self) -> float:
        return min(self.times)


# --- our server in a child process ---------------------------------------------------------------


def serve(folder: Path) -> None:
    """Child process: run HostedSftpServer on a free port with a stub gateway, print the port,
    serve until stdin closes."""
    from connectbatch.transfer.push.gateway import Account
    from connectbatch.transfer.push.quota import PushQuota
    from connectbatch.transfer.push.sftp import HostedSftpServer

    class StubGateway:
        """Every login with the bench password is a writable account in `folder`; finished
        uploads are not ingested (a benchmark of the transfer only; the push quota is counted
        as in production, but never reached)."""

        quota = PushQuota()

        def authenticate(self, username: str, password: str) -> Account | None:
            if password != BENCH_PASSWORD:
                return None
            return Account(username, 0, "bench", folder.resolve(), True, 2**40, push_quota_bytes=2**40)

        def upload_complete(self, account: Account, path: Path) -> None:
            return None

        def upload_over_quota(self, account: Account, path: Path) -> None:
            return None

    server = HostedSftpServer(StubGateway(), "127.0.0.1", 0, folder.parent / "host_key").start()
    print(server.port, flush=True)
    try:
        sys.stdin.read()  # the parent closes our stdin when it is done
    finally:
        server.stop()


class OurServer:
    def __init__(self, workdir: Path) -> None:
        self.folder = workdir / "hosted"
        self.folder.mkdir()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise SystemExit(f"the hosted SFTP server did not start (said {line!r})")
        self.port = int(line)

    def target(self) -> Target:
        return Target(
            "connectbatch",
            "ConnectBatch HostedSftpServer",
            "127.0.0.1",
            self.port,
            "bench",
            BENCH_PASSWORD,
            "/",
            self.folder,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


# --- clients -------------------------------------------------------------------------------------


def paramiko_put(target: Target) -> Callable[[Path, str], str]:
    """paramiko's SFTPClient.put() exactly as a partner's script would call it."""
    import paramiko

    def upload(source: Path, name: str) -> str:
        transport = paramiko.Transport((target.host, target.port))
        try:
            transport.connect(username=target.user, password=target.password)
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            client.put(str(source), f"{target.remote_folder.rstrip('/')}/{name}")
            client.close()
            return f"{transport.local_cipher} + {transport.local_mac}"
        finally:
            transport.close()

    return upload


def sftp_put(target: Target, workdir: Path, cipher: str | None) -> Callable[[Path, str], str]:
    """OpenSSH's `sftp -b` with a password given through SSH_ASKPASS (no sshpass needed).

    The cipher is fixed (aes128-ctr by default) because OpenSSH's first choice,
    chacha20-poly1305, is one paramiko's server does not offer: left to choose, the client
    would use a different cipher with each server and we would partly measure the ciphers."""
    sftp = shutil.which("sftp")
    if sftp is None:
        raise RuntimeError("the `sftp` command is missing (Debian package openssh-client)")
    askpass = workdir / f"askpass-{target.name}"
    askpass.write_text(f"#!/bin/sh\necho '{target.password}'\n")
    askpass.chmod(stat.S_IRWXU)

    def upload(source: Path, name: str) -> str:
        batch = workdir / f"batch-{target.name}"
        batch.write_text(f'put "{source}" "{target.remote_folder.rstrip("/")}/{name}"\n')
        subprocess.run(
            [
                sftp,
                "-q",
                "-o",
                "BatchMode=no",  # before -b, whose BatchMode=yes would forbid passwords
                "-b",
                str(batch),
                "-P",
                str(target.port),
                *(["-c", cipher] if cipher else []),
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                f"{target.user}@{target.host}",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env={
                **os.environ,
                "SSH_ASKPASS": str(askpass),
                "SSH_ASKPASS_REQUIRE": "force",
                "DISPLAY": os.environ.get("DISPLAY", ":0"),
            },
        )
        return cipher or "client's choice"

    return upload


# --- the run -------------------------------------------------------------------------------------


def make_source(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        remaining = size
        while remaining > 0:
            block = os.urandom(min(1 << 20, remaining))
            handle.write(block)
            remaining -= len(block)


def start_sshd_target(workdir: Path) -> tuple[Target | None, Callable[[], None], str]:
    """OpenSSH's sshd (tests/integration/sshd.py) as the reference, or None and the reason."""
    if os.geteuid() != 0:
        return None, lambda: None, "sshd skipped: needs root (it starts its own sshd and test user)"
    try:
        from sshd import start_sshd  # the test fixture module, reused as a library
    except ImportError as exc:
        return None, lambda: None, f"sshd skipped: tests/integration/sshd.py not importable ({exc})"
    server = start_sshd()
    folder = server.make_folder("bench-push-")
    version = subprocess.run(["/usr/sbin/sshd", "-V"], capture_output=True, text=True).stderr.strip()

    def stop() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        server.stop()

    target = Target(
        "sshd",
        "OpenSSH sshd (internal-sftp)",
        server.host,
        server.port,
        server.user,
        server.password,
        str(folder),
        folder,
    )
    return target, stop, version


def run(
    size: int, repeat: int, clients: Sequence[str], sftp_cipher: str | None
) -> tuple[list[Pair], dict[str, object]]:
    workdir = Path(tempfile.mkdtemp(prefix="cb-bench-push-"))
    ours: OurServer | None = None
    stop_sshd: Callable[[], None] = lambda: None  # noqa: E731
    try:
        source = workdir / "Conversions_push_bench.csv"
        make_source(source, size)
        expected = sha256(source)  # also warms the page cache for every upload alike
        ours = OurServer(workdir)
        reference, stop_sshd, server_note = start_sshd_target(workdir)
        targets = [t for t in (ours.target(), reference) if t is not None]
        makers: dict[str, Callable[[Target], Callable[[Path, str], str]]] = {
            "paramiko": paramiko_put,
            "sftp": lambda target: sftp_put(target, workdir, sftp_cipher),
        }
        pairs = [Pair(client, target, makers[client](target)) for client in clients for target in targets]
        for round_number in range(repeat):
            for pair in pairs:
                name = f"upload-{pair.client}-{round_number}.bin"
                started = time.perf_counter()
                pair.note = pair.upload(source, name)
                pair.times.append(time.perf_counter() - started)
                landed = pair.target.local_folder / name
                if sha256(landed) != expected:
                    raise SystemExit(f"{pair.client} -> {pair.target.label}: the uploaded copy differs")
                landed.unlink()
        context: dict[str, object] = {
            "size_bytes": size,
            "repeat": repeat,
            "reference": server_note,
            "paramiko": importlib.metadata.version("paramiko"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(value, 2) for value in os.getloadavg()],
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        return pairs, context
    finally:
        if ours is not None:
            ours.stop()
        stop_sshd()
        shutil.rmtree(workdir, ignore_errors=True)


CLIENT_LABELS = {
    "paramiko": "paramiko `SFTPClient.put()` (defaults)",
    "sftp": "OpenSSH `sftp -b put`",
}


def report(pairs: list[Pair], context: dict[str, object]) -> tuple[str, dict[str, object]]:
    size = int(context["size_bytes"])  # type: ignore[call-overload]
    lines = [
        f"### SFTP push: {size / MB:.0f} MB ({size / 2**20:.0f} MiB) uploaded over loopback, "
        f"best of {context['repeat']}",
        "",
        f"reference: {context['reference']}; paramiko {context['paramiko']}, "
        f"Python {context['python']}, {context['cpus']} CPUs, "
        f"load average {context['load_average']} at {context['date']}",
        "",
        "| client | server | best s | MB/s | all runs MB/s | vs sshd | cipher |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    results: dict[str, object] = {"context": context}
    by_key = {(pair.client, pair.target.name): pair for pair in pairs}
    for pair in pairs:
        speed = size / pair.best() / MB
        runs = ", ".join(f"{size / seconds / MB:.0f}" for seconds in pair.times)
        reference = by_key.get((pair.client, "sshd"))
        ratio = f"{reference.best() / pair.best():.2f}x" if reference else "-"
        lines.append(
            f"| {CLIENT_LABELS[pair.client]} | {pair.target.label} | {pair.best():.2f} | "
            f"{speed:.0f} | {runs} | {ratio} | {pair.note} |"
        )
        results[f"{pair.client}->{pair.target.name}"] = {
            "best_seconds": round(pair.best(), 4),
            "mb_per_s": round(speed, 1),
            "runs_mb_per_s": [round(size / seconds / MB, 1) for seconds in pair.times],
        }
    ours, sshd = by_key.get(("paramiko", "connectbatch")), by_key.get(("paramiko", "sshd"))
    if ours and sshd:
        value = sshd.best() / ours.best()
        verdict = "meets" if value >= TARGET_RATIO else "is below"
        lines += [
            "",
            f"Hosted server / sshd with paramiko's put() = **{value:.2f}x**; "
            f"{verdict} the {TARGET_RATIO}x target.",
        ]
        results["ratio_connectbatch_vs_sshd"] = round(value, 3)
    fast_ours, fast_sshd = by_key.get(("sftp", "connectbatch")), by_key.get(("sftp", "sshd"))
    if fast_ours and fast_sshd:
        results["ratio_connectbatch_vs_sshd_sftp_client"] = round(fast_sshd.best() / fast_ours.best(), 3)
    return "\n".join(lines) + "\n", results


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=200, help="file size in MiB (200)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best counts (3)")
    parser.add_argument("--clients", default="paramiko,sftp", help="comma-separated subset of paramiko,sftp")
    parser.add_argument(
        "--sftp-cipher",
        default="aes128-ctr",
        help="cipher for the `sftp` client rows (aes128-ctr, what paramiko's put() negotiates); "
        "'default' leaves it to the client",
    )
    parser.add_argument("--json", action="store_true", help="also print one BENCH_RESULT json line")
    parser.add_argument("--output", type=Path, help="also write the Markdown table to this file")
    parser.add_argument(
        "--require-ratio",
        type=float,
        default=None,
        help="exit 1 if our server receives slower than this fraction of sshd (paramiko put)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the child process
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    wanted = [name.strip() for name in args.clients.split(",") if name.strip()]
    unknown = set(wanted) - set(CLIENT_LABELS)
    if unknown:
        print(f"bench_sftp_push: unknown client(s) {sorted(unknown)}", file=sys.stderr)
        return 2
    if "sftp" in wanted and shutil.which("sftp") is None:
        print("bench_sftp_push: no `sftp` command, measuring paramiko only", file=sys.stderr)
        wanted.remove("sftp")
    cipher = None if args.sftp_cipher in ("", "default") else args.sftp_cipher
    pairs, context = run(int(args.size_mb * 2**20), max(1, args.repeat), wanted, cipher)
    text, results = report(pairs, context)
    return emit(text, results, args, "ratio_connectbatch_vs_sshd")


if __name__ == "__main__":
    sys.exit(main())
