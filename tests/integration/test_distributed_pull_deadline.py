"""A distributed pull ends by its deadline: a real redis-server, a real `connectbatch worker`
process (two pool processes), the real OpenSSH sshd behind a relay that, past the listing,
passes the server's bytes on slowly for ever, and the coordinator's loader in this process.

The worker's pull had no deadline: it held its pool process for ever, kept the connection
busy on the coordinator, and, outliving the broker's visibility timeout, was delivered again
to the other pool process, which connected again and was held the same way (every worker,
in time, stuck on one partner's server)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import call_csv
from peers import TrickleProxy
from workers import running_coordinator, running_worker

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import SftpSpec

if TYPE_CHECKING:
    from redisd import RedisServer
    from sshd import Sshd

    from connectbatch.distributed.coordinator import Coordinator

pytest_plugins = ["sshd", "redisd"]

OLD = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
VISIBILITY = 6  # s: a task still unacknowledged after this long is delivered again
DEADLINE = 60.0  # CONNECTBATCH_PULL_DEADLINE, above the visibility timeout
ROWS = 15_000  # about 2 MB: minutes at the relay's pace


@pytest.fixture
def settings(tmp_path: Path, redis_server: RedisServer) -> Iterator[Settings]:
    """An installation and its worker (its own process group, stopped by id)."""
    settings = Settings(
        home=tmp_path / "home", lock_timeout=10.0, mode="distributed", redis_url=redis_server.url,
        visibility_timeout=VISIBILITY, pull_deadline=DEADLINE,
    )  # fmt: skip
    with running_worker(
        settings, tmp_path / "worker.log", concurrency=2, CONNECTBATCH_PULL_DEADLINE=str(DEADLINE)
    ):
        yield settings


@pytest.fixture
def services(settings: Settings) -> Services:
    return Services(settings)


@pytest.fixture
def coordinator(services: Services) -> Iterator[Coordinator]:
    with running_coordinator(services) as running:
        yield running


@pytest.fixture
def proxy(sshd_server: Sshd, sftp_folder: Path) -> Iterator[TrickleProxy]:
    sshd_server.put(sftp_folder, "Calls_2026_a.csv", call_csv(ROWS), OLD)
    # past the handshake and the listing; then 4 KB/s: no read ever times out
    relay = TrickleProxy((sshd_server.host, sshd_server.port), fast=40_000, chunk=2048, every=0.5)
    yield relay
    relay.close()


def test_a_trickled_pull_ends_at_its_deadline_on_one_worker_and_is_not_retried(
    services: Services, coordinator: Coordinator, sshd_server: Sshd, sftp_folder: Path, proxy: TrickleProxy
) -> None:
    draft = Connection(
        "Slow partner", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host="127.0.0.1", port=proxy.port, folder=str(sftp_folder), pattern="Calls_*.csv",
        transfer=SftpSpec(),
    )  # fmt: skip
    connection, _ = services.create_connection(
        draft, CredentialInput("p", sshd_server.user, sshd_server.password)
    )
    assert coordinator.dispatch_pull(connection, "schedule")
    assert coordinator.wait_idle(60), "the pull was still going after 60 s"

    assert proxy.trickling.is_set()  # it was held by the trickle, not failed before
    assert proxy.connections == 1  # never delivered again, nor retried, while it ran
    [cut] = services.runs(connection.id)
    assert cut.status is RunStatus.FAILED
    # kept under the visibility timeout (6 s less a third), not the 60 s configured
    assert (cut.reason or "").startswith("timed out: the pull was still going after 4 s")
    assert "CONNECTBATCH_VISIBILITY_TIMEOUT" in (cut.reason or "")
    assert services.run_files(cut.id) == []
    [credential] = services.credentials(connection.id)
    assert credential.status != "Error" and not credential.last_error  # the login worked

    proxy.throttled = False  # the next pull, at full speed, takes the file
    assert coordinator.dispatch_pull(connection, "schedule")
    assert coordinator.wait_idle(60)
    again = services.runs(connection.id)[0]
    assert again.status is RunStatus.COMPLETED and again.files_loaded == 1, again.reason
    assert proxy.connections == 2
