"""Benchmark SFTP pulls: ConnectBatch's SFTP transport vs OpenSSH's `sftp` command.

Run standalone (as root: it starts its own sshd and test user, see tests/integration/sshd.py)::

    python bench/bench_sftp.py [--size-mb 200] [--repeat 3] [--json] [--output FILE.md]

What it measures, and why this way:

* **One file, one server, three clients.** A private OpenSSH sshd on 127.0.0.1 serves a
  200 MiB file of random bytes (incompressible, so no client can win by compression). It is
  pulled by (1) `connectbatch.transfer.pull.sftp.SftpTransport`, (2) the `sftp` command in batch
  mode (`sftp -b` with a `get`, key auth, the client's default ciphers), and (3) paramiko's
  `SFTPClient.get()` with all defaults, the naive baseline issue 5 measured at ~55 % of `sftp`.
* **End to end.** Each pull is timed from connecting to the file being closed on disk, for all
  three clients: that is what a scheduled run pays, and the `sftp` command cannot be timed any
  other way. ConnectBatch's transfer alone (connection already open) is shown as well.
* **Interleaved rounds, best of N.** Each round runs every client once, in turn, so a noisy
  neighbour slows all of them alike; the best round per client is reported. The machine's load
  average is printed because on a shared machine it explains most of the spread.
* **Checked.** Each client's first copy is compared with the source by SHA-256; a wrong copy
  fails the benchmark instead of producing a fast number.

The target (issue 5) is ConnectBatch >= 0.9x the speed of `sftp`. The script exits 0 either way
(it is a measurement; without root it prints why it skipped); `--require-ratio R` makes it exit 1
below R.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
MB = 1_000_000  # sizes and speeds in MB = 10**6 bytes, as in bench_parse.py
TARGET_RATIO = 0.9

sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # `helpers` (ports), which those modules use
from sshd import ClientKey, Sshd, start_sshd  # noqa: E402  (fixture module, reused as a library)


@dataclass
class Client:
    """One way of pulling the file: `pull(target)` downloads it, returning seconds spent on the
    transfer alone when the client can tell (else None)."""

    name: str
    label: str
    pull: Callable[[Path], float | None]
    times: list[float] = field(default_factory=list)
    transfer_times: list[float] = field(default_factory=list)
    note: str = ""

    def best(self) -> float:
        return min(self.times)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def connectbatch_client(server: Sshd, key: ClientKey, remote: str, size: int, cipher: str | None) -> Client:
    from connectbatch.transfer.base import Endpoint, RemoteFile
    from connectbatch.transfer.pull.sftp import SftpTransport
    from connectbatch.transfer.specs import SftpSpec

    endpoint = Endpoint(
        host=server.host,
        port=server.port,
        username=server.user,
        private_key=key.private_text,
        host_key=server.host_keys["ed25519"],
        spec=SftpSpec(ciphers=cipher),
    )
    client = Client("connectbatch", "ConnectBatch SftpTransport", lambda target: None)

    def pull(target: Path) -> float:
        with SftpTransport(endpoint) as transport:
            client.note = f"cipher {transport.cipher}"
            started = time.perf_counter()
            transport.fetch(RemoteFile(Path(remote).name, remote, size, None, ref=remote), target)
            return time.perf_counter() - started

    client.pull = pull
    return client


def sftp_command_client(
    server: Sshd, key: ClientKey, remote: str, workdir: Path, cipher: str | None
) -> Client:
    sftp = shutil.which("sftp")
    if sftp is None:
        raise SystemExit("the `sftp` command is missing (Debian package openssh-client)")
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()

    def pull(target: Path) -> None:
        batch = workdir / "batch.txt"
        batch.write_text(f'get "{remote}" "{target}"\n')
        subprocess.run(
            [
                sftp,
                "-q",
                "-b",
                str(batch),
                "-i",
                str(key.path),
                "-P",
                str(server.port),
                *(["-c", cipher] if cipher else []),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                f"{server.user}@{server.host}",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        return None

    if cipher is None:  # the client's first choice; our sshd offers all of OpenSSH's defaults
        config = subprocess.run(["ssh", "-G", server.host], capture_output=True, text=True).stdout
        lines = [line for line in config.splitlines() if line.startswith("ciphers ")]
        cipher_note = lines[0].split()[1].split(",")[0] if lines else "default"
    else:
        cipher_note = cipher
    label = f"OpenSSH `sftp -b -c {cipher}`" if cipher else "OpenSSH `sftp -b` (defaults)"
    return Client("sftp", label, pull, note=f"cipher {cipher_note}; {version.split(',')[0]}")


def paramiko_default_client(server: Sshd, key: ClientKey, remote: str) -> Client:
    import paramiko

    client = Client("paramiko", "paramiko SFTPClient.get() (defaults)", lambda target: None)

    def pull(target: Path) -> float:
        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        ssh.connect(
            server.host,
            server.port,
            server.user,
            key_filename=str(key.path),
            look_for_keys=False,
            allow_agent=False,
        )
        try:
            transport = ssh.get_transport()
            client.note = f"cipher {transport.remote_cipher if transport else '?'}"
            sftp = ssh.open_sftp()
            started = time.perf_counter()
            sftp.get(remote, str(target))
            elapsed = time.perf_counter() - started
            sftp.close()
        finally:
            ssh.close()
        return elapsed

    client.pull = pull
    return client


def run(
    size: int, repeat: int, clients_wanted: Sequence[str], cipher: str | None = None
) -> tuple[list[Client], dict[str, object]]:
    server = start_sshd()
    workdir = Path(tempfile.mkdtemp(prefix="cb-bench-sftp-"))
    folder: Path | None = None
    try:
        key = server.client_key("ed25519")
        folder = server.make_folder("bench-")
        source = server.put_large(folder, "Conversions_2024_bench.csv", size)
        expected = sha256(source)  # also warms the page cache for every client alike
        remote = str(source)
        every = {
            "connectbatch": lambda: connectbatch_client(server, key, remote, size, cipher),
            "sftp": lambda: sftp_command_client(server, key, remote, workdir, cipher),
            "paramiko": lambda: paramiko_default_client(server, key, remote),
        }
        clients = [every[name]() for name in clients_wanted]
        for round_number in range(repeat):
            for client in clients:
                target = workdir / f"{client.name}.out"
                started = time.perf_counter()
                transfer = client.pull(target)
                client.times.append(time.perf_counter() - started)
                if transfer is not None:
                    client.transfer_times.append(transfer)
                if round_number == 0 and sha256(target) != expected:
                    raise SystemExit(f"{client.label}: the downloaded copy differs from the source")
                target.unlink()
        context: dict[str, object] = {
            "size_bytes": size,
            "repeat": repeat,
            "server": subprocess.run(["/usr/sbin/sshd", "-V"], capture_output=True, text=True).stderr.strip(),
            "paramiko": importlib.metadata.version("paramiko"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(value, 2) for value in os.getloadavg()],
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        return clients, context
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if folder is not None:  # the served file lives in the test user's home
            shutil.rmtree(folder, ignore_errors=True)
        server.stop()


def report(clients: list[Client], context: dict[str, object]) -> tuple[str, dict[str, object]]:
    size = int(context["size_bytes"])  # type: ignore[call-overload]
    by_name = {client.name: client for client in clients}
    lines = [
        f"### SFTP pull: {size / MB:.0f} MB ({size / 2**20:.0f} MiB) over loopback, "
        f"best of {context['repeat']}",
        "",
        f"server {context['server']}; paramiko {context['paramiko']}, "
        f"Python {context['python']}, {context['cpus']} CPUs, "
        f"load average {context['load_average']} at {context['date']}",
        "",
        "| client | best s | MB/s | all runs MB/s | vs `sftp` | note |",
        "|---|---:|---:|---|---:|---|",
    ]
    results: dict[str, object] = {"context": context}
    reference = by_name.get("sftp")
    for client in clients:
        speed = size / client.best() / MB
        runs = ", ".join(f"{size / seconds / MB:.0f}" for seconds in client.times)
        ratio = f"{reference.best() / client.best():.2f}x" if reference else "-"
        lines.append(
            f"| {client.label} | {client.best():.2f} | {speed:.0f} | {runs} | {ratio} | {client.note} |"
        )
        results[client.name] = {
            "best_seconds": round(client.best(), 4),
            "mb_per_s": round(speed, 1),
            "runs_mb_per_s": [round(size / seconds / MB, 1) for seconds in client.times],
        }
        if client.transfer_times:
            transfer_speed = size / min(client.transfer_times) / MB
            results[client.name]["transfer_only_mb_per_s"] = round(transfer_speed, 1)  # type: ignore[index]
    ours = by_name.get("connectbatch")
    if ours and ours.transfer_times:
        lines.append(
            f"| ConnectBatch, transfer only (connected) | {min(ours.transfer_times):.2f} "
            f"| {size / min(ours.transfer_times) / MB:.0f} | | | connection set-up excluded |"
        )
    if ours and reference:
        ratio_value = reference.best() / ours.best()
        verdict = "meets" if ratio_value >= TARGET_RATIO else "is below"
        lines += [
            "",
            f"ConnectBatch / `sftp` = **{ratio_value:.2f}x** (end to end); "
            f"{verdict} the {TARGET_RATIO}x target.",
        ]
        results["ratio_connectbatch_vs_sftp"] = round(ratio_value, 3)
    paramiko_client = by_name.get("paramiko")
    if ours and paramiko_client:
        results["ratio_connectbatch_vs_paramiko_get"] = round(paramiko_client.best() / ours.best(), 3)
    return "\n".join(lines) + "\n", results


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=200, help="file size in MiB (200)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best counts (3)")
    parser.add_argument(
        "--clients",
        default="connectbatch,sftp,paramiko",
        help="comma-separated subset of connectbatch,sftp,paramiko",
    )
    parser.add_argument(
        "--cipher",
        help="force this cipher on ConnectBatch and `sftp` (e.g. aes128-ctr); default: each "
        "client's own preference",
    )
    parser.add_argument("--json", action="store_true", help="also print one BENCH_RESULT json line")
    parser.add_argument("--output", type=Path, help="also write the Markdown table to this file")
    parser.add_argument(
        "--require-ratio",
        type=float,
        default=None,
        help="exit 1 if ConnectBatch is slower than this fraction of `sftp`",
    )
    return parser.parse_args(argv)


def emit(text: str, results: dict[str, object], args: argparse.Namespace, ratio_key: str) -> int:
    """Print the table (and `--json`, `--output`); exit 1 when `--require-ratio` is not met.
    Shared with bench_sftp_push.py."""
    print(text, end="")
    if args.json:
        print("BENCH_RESULT " + json.dumps(results))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    ratio = results.get(ratio_key)
    if args.require_ratio is not None and isinstance(ratio, float) and ratio < args.require_ratio:
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if os.geteuid() != 0:  # a skipped row, not a failed `make bench`
        print("bench_sftp: skipped, needs root (it starts its own sshd and a test user)", file=sys.stderr)
        return 0
    wanted = [name.strip() for name in args.clients.split(",") if name.strip()]
    unknown = set(wanted) - {"connectbatch", "sftp", "paramiko"}
    if unknown:
        print(f"bench_sftp: unknown client(s) {sorted(unknown)}", file=sys.stderr)
        return 2
    size = int(args.size_mb * 2**20)
    clients, context = run(size, max(1, args.repeat), wanted, args.cipher)
    text, results = report(clients, context)
    return emit(text, results, args, "ratio_connectbatch_vs_sftp")


if __name__ == "__main__":
    sys.exit(main())
