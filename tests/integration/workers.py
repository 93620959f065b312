"""Real `connectbatch worker` processes and an in-process coordinator, for the distributed-mode
tests: one starter instead of a copy per test file.

A worker runs in its own process group and is stopped by its id (never by name), so a test
never touches another test's, or another pytest-xdist worker's, processes. It reads its
installation from the environment, as in production: `worker_env` gives it the settings' home,
Redis and visibility timeout, and a test adds what else it changes (`CONNECTBATCH_...=value`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ftpd import stop_process

from connectbatch.settings import Settings

if TYPE_CHECKING:
    from connectbatch.distributed.coordinator import Coordinator
    from connectbatch.services import Services

CLI = str(Path(sys.executable).parent / "connectbatch")


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment without its CONNECTBATCH_ settings, then the installation's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
    env.update(
        CONNECTBATCH_HOME=str(settings.home), CONNECTBATCH_MODE="distributed",
        CONNECTBATCH_REDIS_URL=settings.redis_url,
        CONNECTBATCH_VISIBILITY_TIMEOUT=str(settings.visibility_timeout),
    )  # fmt: skip
    env.update(extra)
    return env


def start_worker(
    settings: Settings, log: Path, name: str = "w", concurrency: int = 1, **extra: str
) -> subprocess.Popen[bytes]:
    """A `connectbatch worker` writing to `log`; stop it with `stop_process(process, grace=15)`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [CLI, "worker", "--name", name, "--concurrency", str(concurrency), "--loglevel", "WARNING"],
            env=worker_env(settings, **extra), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


@contextmanager
def running_worker(
    settings: Settings, log: Path, name: str = "w", concurrency: int = 1, **extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`start_worker` for the length of a `with` block."""
    worker = start_worker(settings, log, name, concurrency, **extra)
    try:
        yield worker
    finally:
        stop_process(worker, grace=15)


@contextmanager
def running_coordinator(services: Services) -> Iterator[Coordinator]:
    """The coordinator (loader, dispatch) in this process, started and stopped around the block."""
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator

    running = Coordinator(services, make_app(services.settings))
    running.start()
    try:
        yield running
    finally:
        running.stop()
