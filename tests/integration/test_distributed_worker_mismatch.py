"""A `connectbatch worker` started with another secret key than the coordinator's (a host whose
CONNECTBATCH_SECRET_KEY was not set, so it made its own secret.key): a real redis-server, a
real worker process and the coordinator's loader in this process.

What is proved: the file's run ends Failed with a message that names the cause and the fix
(the worker's key is not the coordinator's), not the key box's words for stored logins
("a stored credential cannot be decrypted: the secret key changed; re-enter it", which sent
the operator to re-enter credentials the file never used); and the run, retried, loads the
file once.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet
from workers import running_worker

from connectbatch.models import Connection, Direction, FileState, Method, Methodology, RunStatus
from connectbatch.services import Services
from connectbatch.settings import Settings

if TYPE_CHECKING:
    from redisd import RedisServer

pytest_plugins = ["redisd"]

REPO = Path(__file__).resolve().parents[2]
CallCsv = Callable[..., bytes]


@pytest.fixture
def dist_services(settings: Settings, redis_server: RedisServer) -> Services:
    return Services(replace(settings, mode="distributed", redis_url=redis_server.url, visibility_timeout=8))


@pytest.fixture
def worker_with_another_key(dist_services: Services, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with running_worker(
        dist_services.settings, tmp_path / "worker.log", name="other-key",
        CONNECTBATCH_SECRET_KEY=Fernet.generate_key().decode(),
    ) as process:  # fmt: skip
        yield process


def test_a_worker_with_another_key_fails_the_run_saying_so_and_the_retry_loads_it_once(
    dist_services: Services,
    worker_with_another_key: subprocess.Popen[bytes],
    tmp_path: Path,
    call_csv: CallCsv,
) -> None:
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import engine_for
    from connectbatch.distributed.workers import overview

    settings = dist_services.settings
    deadline = time.monotonic() + 30
    while not overview(settings, timeout=0.5).workers:
        assert time.monotonic() < deadline, "the worker did not answer"
    draft = Connection("Pushed", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    connection, _ = dist_services.create_connection(draft)
    _engine, coordinator = engine_for(dist_services, make_app(settings))
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    upload = tmp_path / "Calls_1.csv"
    upload.write_bytes(call_csv({"CallSessionId": "k-1", "EventDate": when}))
    try:
        run = coordinator.submit_file(connection, upload)
        assert coordinator.wait_idle(60)
    finally:
        coordinator.stop()
    failed = dist_services.run(run.id)
    assert failed.status is RunStatus.FAILED
    assert failed.reason is not None
    said = "is not the coordinator's, or the task was altered in Redis; give every worker the coordinator"
    assert said in failed.reason
    assert "re-enter" not in failed.reason
    again = dist_services.retry(run.id)  # in this process, with the coordinator's key
    assert again.status is RunStatus.COMPLETED
    assert [f.state for f in dist_services.run_files(again.id)] == [FileState.LOADED]
    assert again.rows_accepted == 1


def test_a_coordinator_whose_key_cannot_open_a_login_fails_the_pull_saying_so(
    dist_services: Services,
) -> None:
    """The coordinator itself started with another key than the one that sealed a pull
    connection's login: a scheduled pull raised before any run existed (the engine logged
    "scheduled run crashed"), so the connection's pulls stopped without a word. Now its run
    is Failed with the reason, as in embedded mode."""
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator
    from connectbatch.services import CredentialInput
    from connectbatch.transfer.specs import SftpSpec

    draft = Connection(
        "Sealed", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host="127.0.0.1", port=1, folder="/", pattern="*.csv", transfer=SftpSpec(),
    )  # fmt: skip
    connection, _ = dist_services.create_connection(draft, CredentialInput("p", "bob", "pw-never-logged-2"))
    rotated = Services(replace(dist_services.settings, secret_key=Fernet.generate_key().decode()))
    coordinator = Coordinator(rotated, make_app(rotated.settings))  # its loader thread not started

    assert coordinator.dispatch_pull(connection, "schedule")

    [run] = rotated.runs(connection.id)
    assert run.status is RunStatus.FAILED and "cannot be decrypted" in (run.reason or "")
    assert coordinator.dispatch_pull(connection, "schedule")  # nothing left busy
