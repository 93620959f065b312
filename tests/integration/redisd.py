"""A real redis-server on a free loopback port (named redisd, not redis: this folder is on sys.path and
would shadow the redis client package), for the distributed-mode tests and benchmark.

Started from the Debian package's binary with no persistence, stopped by its process id.
Absent binary: the tests skip with one line, except under CI=true (`make test` installs
redis-server through TEST_DEBS) where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.ports import free_port

BINARY = "redis-server"


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis() -> RedisServer:
    binary = shutil.which(BINARY) or "/usr/bin/redis-server"
    workdir = Path(tempfile.mkdtemp(prefix="cb-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = RedisServer(process, port, workdir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("redis-server did not start")


def available() -> bool:
    return shutil.which(BINARY) is not None or Path("/usr/bin/redis-server").exists()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if not available():
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing (make test installs it through TEST_DEBS)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
