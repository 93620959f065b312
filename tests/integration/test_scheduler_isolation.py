"""Scheduled pulls held by partner servers that do not answer, against real servers on
127.0.0.1 (a silent peer, and OpenSSH's sshd for a healthy partner): the engine's
housekeeping and the other connections' pulls go on meanwhile."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import call_csv
from peers import SilentPeer, TrickleProxy

from connectbatch.cli.common import EXIT_BUSY
from connectbatch.engine import Engine
from connectbatch.errors import RunInProgressError
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.pull import stopping
from connectbatch.transfer.specs import FtpSpec, FtpTls, ImapSecurity, ImapSpec, SftpSpec, TransferSpec

if TYPE_CHECKING:
    from sshd import Sshd

pytest_plugins = ["sshd"]

OLD = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
HUNG = 12  # more than the pulls that may run at once by default
SPECS: tuple[tuple[Method, TransferSpec], ...] = (
    (Method.SFTP, SftpSpec()),
    (Method.FTP, FtpSpec(tls=FtpTls.NONE)),
    (Method.EMAIL, ImapSpec(security=ImapSecurity.PLAIN)),
)


@pytest.fixture
def silent() -> Iterator[SilentPeer]:
    peer = SilentPeer()
    yield peer
    peer.close()


def pull_connection(
    services: Services,
    name: str,
    method: Method,
    spec: TransferSpec,
    port: int,
    folder: str,
    login: tuple[str, str],
) -> Connection:
    draft = Connection(
        name, "call_conversions", Direction.INBOUND, method, Methodology.PULL, host="127.0.0.1",
        port=port, folder=folder if method is not Method.EMAIL else "INBOX", pattern="Calls_*.csv",
        schedule="0 0 1 1 *", transfer=spec,
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", *login))
    return created


def fire_now(engine: Engine, job_id: str) -> None:
    """The job, due now: run by APScheduler's own executors as in `serve`."""
    engine.scheduler._scheduler.modify_job(job_id, next_run_time=dt.datetime.now(dt.UTC))


def wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def finished(services: Services, connection: Connection) -> bool:
    return any(r.status is not RunStatus.IN_PROGRESS for r in services.runs(connection.id))


def test_housekeeping_and_other_pulls_go_on_while_pulls_hang(
    services: Services, silent: SilentPeer, sshd_server: Sshd, sftp_folder: Path
) -> None:
    """All scheduled jobs shared one pool of 10 threads: ten pulls held by servers that never
    answer (30 s a step each) held back the action lock job and every other connection's
    pull until they failed. Now housekeeping has threads of its own, and pulls more of them;
    the healthy partner's pull and the lock job both finish while the hung pulls still wait."""
    hung = [
        pull_connection(services, f"Hung {k}", *SPECS[k % len(SPECS)], silent.port, "/", ("bob", "pw-1"))
        for k in range(HUNG)
    ]
    sshd_server.put(sftp_folder, "Calls_2026_ok.csv", call_csv(3), OLD)
    healthy = pull_connection(
        services, "Healthy", Method.SFTP, SftpSpec(), sshd_server.port, str(sftp_folder),
        (sshd_server.user, sshd_server.password),
    )  # fmt: skip
    engine = Engine(services)
    locked = threading.Event()
    hung_done_at_lock: list[bool] = []

    def lock() -> int:
        hung_done_at_lock.append(any(finished(services, c) for c in hung))
        locked.set()
        return 0

    engine.scheduler._lock_actions = lock
    engine.start(servers=False)
    try:
        assert wait_for(locked.is_set, 30)  # the start's own lock job
        locked.clear()
        for c in hung:
            fire_now(engine, f"pull-{c.id}")
        assert wait_for(lambda: silent.accepted >= 10, 30), "the hung pulls did not connect"

        fire_now(engine, "lock-actions")
        fire_now(engine, f"pull-{healthy.id}")
        assert wait_for(lambda: finished(services, healthy), 120)
        assert wait_for(locked.is_set, 120)

        [run] = services.runs(healthy.id)
        hung_done = [c.name for c in hung if finished(services, c)]
        assert run.status is RunStatus.COMPLETED and run.files_loaded == 1
        assert hung_done == [], "the healthy pull waited for hung ones to fail"
        assert hung_done_at_lock[-1] is False, "the lock job waited for hung pulls to fail"
    finally:
        engine.stop()


def test_a_pull_waiting_for_hung_ones_starts_by_their_deadline(
    settings: Settings, silent: SilentPeer, sshd_server: Sshd, sftp_folder: Path
) -> None:
    """More hung pulls than pull threads (CONNECTBATCH_PULL_WORKERS): each ends at its
    deadline (CONNECTBATCH_PULL_DEADLINE), a Failed run saying so with a retry scheduled, long
    before a step's own 30 s timeout, and the healthy pull waiting behind them then runs."""
    services = Services(replace(settings, pull_workers=2, pull_deadline=3.0))
    hung = [
        pull_connection(services, f"Hung {k}", *SPECS[k], silent.port, "/", ("bob", "pw-1")) for k in range(3)
    ]
    sshd_server.put(sftp_folder, "Calls_2026_ok.csv", call_csv(3), OLD)
    healthy = pull_connection(
        services, "Healthy", Method.SFTP, SftpSpec(), sshd_server.port, str(sftp_folder),
        (sshd_server.user, sshd_server.password),
    )  # fmt: skip
    engine = Engine(services)
    engine.start(servers=False)
    try:
        for c in hung:
            fire_now(engine, f"pull-{c.id}")
        assert wait_for(lambda: silent.accepted >= 2, 30), "the hung pulls did not connect"
        fire_now(engine, f"pull-{healthy.id}")

        assert wait_for(lambda: finished(services, healthy), 120)
        assert wait_for(lambda: all(finished(services, c) for c in hung), 120)

        [run] = services.runs(healthy.id)
        assert run.status is RunStatus.COMPLETED and run.files_loaded == 1
        for c in hung:
            [failed] = services.runs(c.id)
            assert failed.status is RunStatus.FAILED and failed.reason == stopping.overdue(3.0), c.name
            assert failed.files_seen == 0
            assert engine.scheduler._scheduler.get_job(f"retry-{c.id}") is not None, c.name
            [credential] = services.credentials(c.id)
            assert credential.status != "Error"
    finally:
        engine.stop()


def test_the_same_connection_never_runs_two_pulls_at_once(
    services: Services, sshd_server: Sshd, sftp_folder: Path, tmp_path: Path
) -> None:
    """A scheduled pull held by a partner server sending slowly (the real sshd behind a relay
    that trickles part way through the download): its next cron triggers, Run now and another
    process's `connectbatch pull` start no second pull. A trigger skipped so is in the
    connection's history: APScheduler's own limit of one running instance per job used to
    drop it with a line in the log only, so a slow pull's skipped polls were invisible."""
    sshd_server.put(sftp_folder, "Calls_2026_big.csv", call_csv(15_000), OLD)
    proxy = TrickleProxy((sshd_server.host, sshd_server.port), fast=40_000, chunk=2048, every=0.5)
    connection = pull_connection(
        services, "Slow", Method.SFTP, SftpSpec(), proxy.port, str(sftp_folder),
        (sshd_server.user, sshd_server.password),
    )  # fmt: skip
    engine = Engine(services)
    engine.start(servers=False)
    try:
        fire_now(engine, f"pull-{connection.id}")
        assert proxy.trickling.wait(60), "the pull did not reach the download"
        [run] = services.runs(connection.id)
        assert run.status is RunStatus.IN_PROGRESS

        fire_now(engine, f"pull-{connection.id}")  # its next cron time comes
        assert wait_for(lambda: services.connection_events(connection.id), 60), (
            "the skip is not in the history"
        )
        with pytest.raises(RunInProgressError):
            engine.run_now(connection.id)
        env = {
            **os.environ,
            "CONNECTBATCH_HOME": str(services.settings.home),
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
        env.pop("CONNECTBATCH_DB", None)
        other = subprocess.run(
            [sys.executable, "-m", "connectbatch", "pull", str(connection.id)],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert other.returncode == EXIT_BUSY, other.stderr
        assert "still in progress" in other.stderr and "Traceback" not in other.stderr

        assert [r.id for r in services.runs(connection.id)] == [run.id]
        [event] = services.connection_events(connection.id)
        assert event.kind == "trigger_skipped" and event.run_id == run.id
    finally:
        engine.stop()
        proxy.close()
    [stopped] = services.runs(connection.id)
    assert stopped.status is RunStatus.FAILED and stopped.reason == stopping.STOPPED
