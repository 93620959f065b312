"""Distributed mode when Redis is away: a real redis-server, stopped and started again on its
port, and a real `connectbatch serve --coordinator` process against a port nobody listens on.

What is proved: a coordinator started without Redis says so in one line naming the address
and the variable (it was "internal error: ConnectionError", exit 3); a Redis restarted
without persistence (the compose example's `redis:7` keeps nothing by default) no longer ends
the coordinator with "lost the coordinator lock" when nobody else holds it, while a lock
another coordinator took is still given up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from connectbatch.distributed.coordinator import LOCK_KEY, CoordinatorLock

if TYPE_CHECKING:
    from redisd import RedisServer

pytest_plugins = ["redisd"]

REPO = Path(__file__).resolve().parents[2]
TTL_MS = 900  # renewed every 0.3 s: a restart is noticed within a second


def restart(server: RedisServer) -> None:
    """Stop redis-server and start a new one on the same port (no persistence: empty)."""
    from redisd import BINARY

    server.process.terminate()
    server.process.wait(timeout=10)
    binary = shutil.which(BINARY) or "/usr/bin/redis-server"
    server.process = subprocess.Popen(
        [binary, "--port", str(server.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(server.workdir), "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=server.port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start again")


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_redis_restart_does_not_end_the_coordinator(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port)
    lock = CoordinatorLock(client, holder="host-a:1", ttl_ms=TTL_MS)
    assert lock.acquire()
    try:
        restart(redis_server)  # the key is gone with the old server's memory
        assert wait_for(lambda: client.get(LOCK_KEY) == b"host-a:1")
        time.sleep(TTL_MS / 1000)
        assert not lock.lost.is_set()
        assert client.get(LOCK_KEY) == b"host-a:1"
    finally:
        lock.release()


def test_a_lock_another_coordinator_took_is_still_given_up(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port)
    lock = CoordinatorLock(client, holder="host-a:1", ttl_ms=TTL_MS)
    assert lock.acquire()
    try:
        client.set(LOCK_KEY, "host-b:2")
        assert wait_for(lock.lost.is_set)
        assert client.get(LOCK_KEY) == b"host-b:2"
    finally:
        lock.release()
    assert client.get(LOCK_KEY) == b"host-b:2"  # release leaves the other holder's key


def test_a_coordinator_without_redis_says_where_it_looked(tmp_path: Path) -> None:
    from redisd import free_port

    port = free_port()  # nobody listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
    env.update(
        PYTHONPATH=str(REPO), CONNECTBATCH_HOME=str(tmp_path), CONNECTBATCH_MODE="distributed",
        CONNECTBATCH_REDIS_URL=f"redis://:s3cret@127.0.0.1:{port}/0",
        CONNECTBATCH_SFTP_PORT="0", CONNECTBATCH_FTP_PORT="0",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "connectbatch", "serve", "--coordinator"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"connectbatch: error: Redis cannot be reached at 127.0.0.1:{port}: ")
    assert lines[0].endswith("; start it, or set CONNECTBATCH_REDIS_URL to the Redis the workers use")
    assert "s3cret" not in done.stderr
    assert not (tmp_path / "connectbatch.duckdb").exists()  # the lock comes before the database


def test_a_coordinator_started_again_after_a_kill_waits_for_the_lock_it_left(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A coordinator SIGKILLed and started again refused for the lock's 15 s, naming its own
    dead process ("another coordinator is running (host:<dead pid>)", exit 75): a service
    manager restarting it quickly could reach its start limit and leave none running."""
    import signal
    import socket

    client = redis.Redis(port=redis_server.port)
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = f"{socket.gethostname()}:{dead.pid}"
    # As the killed one left it: no longer renewed. 6 s: the new coordinator must find it
    # still there after its start, which takes seconds on a loaded machine (1.5 s once failed).
    client.set(LOCK_KEY, left, px=6000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
    env.update(
        PYTHONPATH=str(REPO), CONNECTBATCH_HOME=str(tmp_path), CONNECTBATCH_MODE="distributed",
        CONNECTBATCH_REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0",
        CONNECTBATCH_SFTP_PORT="0", CONNECTBATCH_FTP_PORT="0",
    )  # fmt: skip
    started = subprocess.Popen(
        [sys.executable, "-m", "connectbatch", "serve", "--coordinator", "--no-servers"],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        assert started.stdout is not None
        first = started.stdout.readline()
        assert f"coordinator lock left by {left}, a process that is gone; waiting" in first, first
        assert started.stdout.readline().startswith("coordinator lock held by ")
    finally:
        os.killpg(started.pid, signal.SIGTERM)
        started.communicate(timeout=30)
    assert started.returncode == 0
