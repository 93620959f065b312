"""Distributed pulls from partner servers and mailboxes that are not tidy: a real redis-server,
a real `connectbatch worker` process, a real OpenSSH sshd and Dovecot on 127.0.0.1, and the
coordinator's loader in this process.

Each test is something embedded mode already handles (test_untidy_pulls, test_imap_pull),
proved the same when a worker lists and fetches: one file the server will not send costs
that file only, never the run or the files beside it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import call_csv
from workers import running_coordinator, running_worker

from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import SftpSpec

if TYPE_CHECKING:
    from dovecot import DovecotServer
    from redisd import RedisServer
    from sshd import Sshd

    from connectbatch.distributed.coordinator import Coordinator

pytest_plugins = ["sshd", "redisd"]  # Dovecot: one per module, below

OLD = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
LIMIT = 4096  # CONNECTBATCH_MAX_FILE_BYTES of coordinator and worker: 200 call rows are over it


@pytest.fixture(scope="module")
def worker_home(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Settings]:
    """One installation and one worker for the module (its own process group, stopped by
    id): a worker's start and stop would cost more than most of these tests."""
    folder = tmp_path_factory.mktemp("distributed-pulls")
    settings = Settings(
        home=folder / "home", lock_timeout=10.0, mode="distributed", redis_url=redis_server.url,
        visibility_timeout=8, max_file_bytes=LIMIT,
    )  # fmt: skip
    with running_worker(settings, folder / "worker.log", CONNECTBATCH_MAX_FILE_BYTES=str(LIMIT)):
        yield settings


@pytest.fixture
def services(worker_home: Settings) -> Services:
    """Distributed-mode services on the module's installation (connections named apart)."""
    return Services(worker_home)


@pytest.fixture
def coordinator(services: Services) -> Iterator[Coordinator]:
    with running_coordinator(services) as running:
        yield running


def pull(coordinator: Coordinator, connection: Connection, trigger: str) -> None:
    assert coordinator.dispatch_pull(connection, trigger)
    assert coordinator.wait_idle(120)


def files_of(services: Services, run_id: int) -> dict[str, tuple[str, str | None]]:
    return {f.name: (str(f.state), f.message) for f in services.run_files(run_id)}


def sftp_folder(
    services: Services, sshd: Sshd, files: dict[str, bytes], name: str = "", **attrs: object
) -> tuple[Connection, Path]:
    folder = sshd.make_folder("untidy-")
    name = name or f"Untidy {folder.name}"
    owner = folder.stat()
    for file_name, data in files.items():
        path = folder / file_name
        path.write_bytes(data)
        os.chown(path, owner.st_uid, owner.st_gid)
        os.utime(path, (OLD.timestamp(), OLD.timestamp()))
    draft = Connection(
        name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=sshd.host, port=sshd.port, folder=str(folder), pattern="Calls_*.csv", transfer=SftpSpec(),
        **attrs,  # type: ignore[arg-type]
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", sshd.user, sshd.password))
    return created, folder


def test_a_file_the_server_will_not_send_is_skipped_and_the_files_beside_it_go_in(
    services: Services, coordinator: Coordinator, sshd_server: Sshd
) -> None:
    """It failed the whole pull after three retries ("pull failed: RemoteFileRefusedError"),
    marked the credential Error and took none of the files beside it, on every run."""
    files = {f"Calls_{k}.csv": call_csv(2, prefix=f"r{k}") for k in (1, 2, 3)}
    connection, folder = sftp_folder(services, sshd_server, files)
    (folder / "Calls_2.csv").chmod(0)

    pull(coordinator, connection, "manual")
    [first] = services.runs(connection.id)
    assert first.status is RunStatus.COMPLETED, first.reason
    found = files_of(services, first.id)
    assert (found["Calls_1.csv"][0], found["Calls_3.csv"][0]) == ("loaded", "loaded")
    state, message = found["Calls_2.csv"]
    assert state == "skipped" and "read" in (message or "") and sshd_server.user in (message or "")
    assert "Calls_2.csv not taken" in (first.reason or "")
    [credential] = services.credentials(connection.id)
    assert credential.status == "Active" and not credential.last_error

    pull(coordinator, connection, "schedule")  # still unreadable: tried again, not recorded twice
    assert len(services.runs(connection.id)) == 1
    (folder / "Calls_2.csv").chmod(0o644)  # the partner fixes it; size and time unchanged
    pull(coordinator, connection, "schedule")
    fixed = services.runs(connection.id)[0]
    assert files_of(services, fixed.id) == {"Calls_2.csv": ("loaded", None)}
    assert services.count_actions(connection.id) == 6


def test_a_delete_the_server_refuses_holds_back_neither_the_next_files_nor_the_runs(
    services: Services, coordinator: Coordinator, sshd_server: Sshd
) -> None:
    """The worker tidies up a loaded file on the next pull; a refused delete raised out of
    its task, so every later pull of the folder failed and no new file was taken again."""
    files = {f"Calls_{k}.csv": call_csv(2, prefix=f"d{k}") for k in (1, 2)}
    connection, folder = sftp_folder(services, sshd_server, files, after_success="delete")
    folder.chmod(0o555)  # our login may read but not delete there
    try:
        pull(coordinator, connection, "manual")
        new = folder / "Calls_3.csv"
        folder.chmod(0o755)
        new.write_bytes(call_csv(2, prefix="d3"))
        os.chown(new, folder.stat().st_uid, folder.stat().st_gid)
        os.utime(new, (OLD.timestamp(), OLD.timestamp()))
        folder.chmod(0o555)
        pull(coordinator, connection, "manual")
    finally:
        folder.chmod(0o755)
    second, first = services.runs(connection.id)
    assert first.status is RunStatus.COMPLETED and first.files_loaded == 2
    assert second.status is RunStatus.COMPLETED, second.reason
    assert files_of(services, second.id) == {"Calls_3.csv": ("loaded", None)}
    reason = second.reason or ""
    assert "Calls_1.csv, Calls_2.csv taken but not deleted" in reason and "permission to delete" in reason
    [credential] = services.credentials(connection.id)
    assert credential.status == "Active"
    assert services.count_actions(connection.id) == 6  # nothing loaded twice

    pull(coordinator, connection, "schedule")  # permission given: tidied up, nothing recorded
    assert len(services.runs(connection.id)) == 2
    assert list(folder.iterdir()) == []


def test_a_file_listed_over_the_size_limit_is_recorded_once_and_never_downloaded(
    services: Services, coordinator: Coordinator, sshd_server: Sshd
) -> None:
    """The worker fetched it up to the limit on every poll, and every scheduled poll made a
    new run with the same 'larger than the limit' line."""
    files = {"Calls_1.csv": call_csv(2, prefix="s1"), "Calls_big.csv": call_csv(200, prefix="big")}
    assert len(files["Calls_big.csv"]) > LIMIT
    connection, _ = sftp_folder(services, sshd_server, files)

    pull(coordinator, connection, "schedule")
    pull(coordinator, connection, "schedule")
    [run] = services.runs(connection.id)
    found = files_of(services, run.id)
    assert found["Calls_1.csv"] == ("loaded", None)
    state, message = found["Calls_big.csv"]
    assert state == "skipped" and "larger than the limit of 4,096 bytes" in (message or "")
    assert "IMAP" not in (message or "") and "SFTP" not in (message or "")  # as embedded words it


@pytest.fixture(scope="module")
def dovecot_server() -> Iterator[DovecotServer]:
    from dovecot import running_dovecot

    with running_dovecot() as running:
        yield running


def mail(
    *attachments: tuple[str, bytes], sender: str = "reports@partner.example", subject: str = "Calls"
) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "inbox@example.test", subject
    message["Message-ID"] = make_msgid(domain="partner.example")
    message.set_content("Files attached.\n")
    for name, payload in attachments:
        kind = ("application", "pdf") if payload.startswith(b"%PDF") else ("text", "csv")
        message.add_attachment(payload, maintype=kind[0], subtype=kind[1], filename=name)
    return message.as_bytes()


def test_every_mail_of_an_email_pull_is_recorded_once_and_marked_processed_as_embedded_does(
    services: Services, coordinator: Coordinator, dovecot_server: DovecotServer
) -> None:
    """A mail that brought no file was neither in the connection's history nor marked; a
    mail whose file a run rejected, or that was over the limit or from a sender not allowed,
    was never marked: every poll downloaded it again and made a new run saying so again."""
    from connectbatch.transfer.pull.imap import DEFAULT_FLAG
    from connectbatch.transfer.specs import ImapSecurity, ImapSpec

    server, user = dovecot_server, dovecot_server.add_user()
    uids = {
        "good": server.append(user, mail(("calls_0.csv", call_csv(2, prefix="m0")))),
        "pdf": server.append(user, mail(("calls_1.csv", b"%PDF-1.4\x00\x01 a report"))),
        "over": server.append(user, mail(("calls_2.csv", call_csv(200, prefix="big")))),
        "nothing": server.append(user, mail(subject="no file today")),
        "wrong": server.append(user, mail(("summary.pdf", b"%PDF-1.4"), subject="wrong file")),
        "stranger": server.append(user, mail(("calls_9.csv", call_csv(2)), sender="x@elsewhere.example")),
    }
    spec = ImapSpec(security=ImapSecurity.PLAIN, allowed_senders=("reports@partner.example",))
    draft = Connection(
        "Mailed calls", "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PULL,
        host=server.host, port=server.port, pattern="calls_*.csv", transfer=spec,
    )  # fmt: skip
    connection, _ = services.create_connection(
        draft, CredentialInput("partner", user.username, user.password)
    )

    pull(coordinator, connection, "manual")
    [first] = services.runs(connection.id)
    found = files_of(services, first.id)
    assert {name: state for name, (state, _) in found.items()} == {
        "calls_0.csv": "loaded", "calls_1.csv": "rejected", "calls_2.csv": "skipped",
        f"message {uids['stranger']} from x@elsewhere.example": "skipped",
    }  # fmt: skip
    events = services.connection_events(connection.id)
    assert sorted(e.kind for e in events) == ["mail_unmatched", "mail_unmatched"]
    assert "summary.pdf" in " ".join(e.message for e in events)

    for _ in range(2):  # the next polls mark every mail; nothing is recorded again
        pull(coordinator, connection, "schedule")
    assert [r.id for r in services.runs(connection.id)] == [first.id]
    assert len(services.connection_events(connection.id)) == 2
    for name, uid in uids.items():
        flags = server.flags(user, uid)
        assert DEFAULT_FLAG in flags and "\\Seen" not in flags, name
    assert services.count_actions(connection.id) == 2


def test_tasks_in_flight_when_redis_loses_its_data_are_sent_again_and_load_once(
    services: Services, sshd_server: Sshd, redis_server: RedisServer
) -> None:
    """A Redis restarted without its data (the compose example's `redis:7` keeps none) or
    flushed loses the queued tasks and the results not yet loaded: the coordinator waited for
    them for ever, its run stayed In Progress and the connection was never pulled again."""
    import redis
    from test_distributed_redis_outage import restart

    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator

    files = {f"Calls_{k}.csv": call_csv(3, prefix=f"f{k}") for k in (1, 2)}
    connection, _ = sftp_folder(services, sshd_server, files)
    coordinator = Coordinator(services, make_app(services.settings))  # loaded step by step
    client = redis.Redis.from_url(services.settings.redis_url)

    assert coordinator.dispatch_pull(connection, "manual")
    assert coordinator.wait_finished("pull", 60)
    restart(redis_server)  # the pull's result is gone before the loader read it
    coordinator.step()
    assert coordinator.wait_finished("pull", 60)  # sent again
    assert coordinator.step()  # the listing recorded, the parses sent
    client.flushall()  # the parses' messages or results are gone too
    coordinator.step()
    assert coordinator.wait_finished("parse", 60)
    coordinator.step()
    assert coordinator.idle()
    [run] = services.runs(connection.id)
    assert run.status is RunStatus.COMPLETED, run.reason
    assert sorted(state for state, _ in files_of(services, run.id).values()) == ["loaded", "loaded"]
    assert services.count_actions(connection.id) == 6


def test_the_partial_download_of_a_pull_killed_mid_fetch_is_removed_by_the_next_pull(
    services: Services, coordinator: Coordinator, sshd_server: Sshd
) -> None:
    """A worker SIGKILLed (or OOM-killed) while it fetched left its partial download in
    $CONNECTBATCH_HOME/incoming for good: the task ran again elsewhere, the disk filled up.
    Only a dead process of this host is cleared: the folder may be shared by several hosts."""
    import socket

    dead = subprocess.Popen(["true"])
    dead.wait()
    incoming = services.settings.home / "incoming"
    host = socket.gethostname()
    left = {
        "killed": incoming / f"pull-{host}-{dead.pid}-x1a2b3c4",
        "live": incoming / f"pull-{host}-{os.getpid()}-x5d6e7f8",  # a pull under way here
        "elsewhere": incoming / f"pull-another-host-{dead.pid}-x9a8b7c6",
    }
    for folder in left.values():
        folder.mkdir(parents=True)
        (folder / "payload").write_bytes(b"x" * 1000)
    connection, _ = sftp_folder(services, sshd_server, {"Calls_1.csv": call_csv(2, prefix="k1")})

    pull(coordinator, connection, "manual")
    assert services.runs(connection.id)[0].files_loaded == 1
    assert sorted(p.name for p in incoming.iterdir()) == sorted([left["live"].name, left["elsewhere"].name])


def test_the_parse_outputs_of_a_run_that_is_over_are_removed_and_those_of_a_live_run_kept(
    services: Services, sshd_server: Sshd
) -> None:
    """A coordinator killed between the workers' outputs and its loads (its runs Failed at
    the next start, retried from the staged bytes) left the outputs, parsed copies of the
    partner's rows, in staging/out for good: no retention ever removed them."""
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator

    first = Coordinator(services, make_app(services.settings))  # loaded step by step
    connections = []
    for name in ("Over", "Live"):
        connection, _ = sftp_folder(services, sshd_server, {"Calls_1.csv": call_csv(2, prefix=name)}, name)
        assert first.dispatch_pull(connection, "manual")
        connections.append(connection)
    assert first.wait_finished("pull", 60)
    first.step()
    assert first.wait_finished("parse", 60)
    out = services.settings.staging / "out"
    assert len(list(out.iterdir())) == 2
    [over] = services.runs(connections[0].id)
    services.ingestor.fail_run(over, "interrupted")  # as the next coordinator's start finds it

    Coordinator(services, make_app(services.settings)).step()  # another coordinator's loader
    [kept] = list(out.iterdir())
    [live] = services.runs(connections[1].id)
    assert kept.name.endswith(f".{live.id}")
    first.step()  # the live run's output is still whole: loaded
    assert services.runs(connections[1].id)[0].status is RunStatus.COMPLETED
    assert list(out.iterdir()) == []


def test_a_pull_that_finds_another_process_running_the_connection_neither_sticks_nor_is_lost(
    services: Services, coordinator: Coordinator, sshd_server: Sshd
) -> None:
    """The app's Run now and `connectbatch pull N` run in their own process: the workers'
    listing came back while such a run was going, opening the coordinator's run raised, and
    the connection stayed busy in the coordinator for good: never pulled again until it was
    restarted, and nothing said why."""
    connection, _ = sftp_folder(services, sshd_server, {"Calls_1.csv": call_csv(2, prefix="b1")})
    other = services.ingestor.start_run(connection, "manual")  # as another process's run

    pull(coordinator, connection, "schedule")
    assert [r.id for r in services.runs(connection.id)] == [other.id]
    assert [e.kind for e in services.connection_events(connection.id)] == ["trigger_skipped"]
    services.ingestor.finish_run(other)

    pull(coordinator, connection, "schedule")  # the next trigger takes the file
    latest = services.runs(connection.id)[0]
    assert latest.id != other.id and files_of(services, latest.id) == {"Calls_1.csv": ("loaded", None)}


def test_a_scheduled_trigger_while_the_connections_pull_is_going_is_in_the_history(
    services: Services, sshd_server: Sshd
) -> None:
    """Embedded mode's scheduler records a trigger it skips because a run is going ("skipped
    2 scheduled triggers since ..."); the distributed engine only logged it."""
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import engine_for

    connection, _ = sftp_folder(services, sshd_server, {"Calls_1.csv": call_csv(2, prefix="t1")})
    engine, coordinator = engine_for(services, make_app(services.settings))
    coordinator.stop()  # its pull stays in flight until this test loads it
    for _ in range(3):  # three triggers: the first sends the pull, two find it going
        engine.scheduler._scheduled(connection.id, 0)
    [event] = services.connection_events(connection.id)
    assert event.kind == "trigger_skipped" and event.count == 2
    assert "skipped 2 scheduled triggers since" in event.message
    assert coordinator.wait_finished("pull", 60)
    coordinator.step()
    assert coordinator.wait_finished("parse", 60)
    coordinator.step()
    assert services.runs(connection.id)[0].files_loaded == 1


def test_a_file_over_the_workers_limit_is_recorded_when_the_coordinators_limit_is_higher(
    worker_home: Settings, sshd_server: Sshd
) -> None:
    """A worker host whose CONNECTBATCH_MAX_FILE_BYTES is lower than the coordinator's does
    not fetch the file; the coordinator, judging by its own limit, found nothing to say, so
    the file waited for ever with no line anywhere."""
    from dataclasses import replace

    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator

    services = Services(replace(worker_home, max_file_bytes=1_000_000))
    connection, _ = sftp_folder(services, sshd_server, {"Calls_big.csv": call_csv(200, prefix="mid")})
    coordinator = Coordinator(services, make_app(services.settings))
    coordinator.start()
    try:
        for _ in range(2):
            pull(coordinator, connection, "schedule")
    finally:
        coordinator.stop()
    [run] = services.runs(connection.id)
    [(state, message)] = files_of(services, run.id).values()
    assert state == "skipped" and "larger than the limit of 4,096 bytes" in (message or "")


def test_a_redis_that_is_down_for_a_while_is_said_once_and_its_lost_tasks_go_again(
    services: Services, sshd_server: Sshd, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The loader asked Redis ten times a second and logged a traceback each time, for as
    long as Redis was down (36,000 an hour)."""
    from test_distributed_redis_outage import restart

    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator

    connection, _ = sftp_folder(services, sshd_server, {"Calls_1.csv": call_csv(2, prefix="d1")})
    coordinator = Coordinator(services, make_app(services.settings))
    assert coordinator.dispatch_pull(connection, "manual")
    redis_server.process.terminate()
    redis_server.process.wait(timeout=10)
    coordinator.start()
    try:
        time.sleep(1.5)
        said = [r for r in caplog.records if "tasks' states" in r.getMessage()]
        assert len(said) == 1 and "trying again" in said[0].getMessage() and not said[0].exc_info
        restart(redis_server)  # back, without its data: the pull goes again
        assert coordinator.wait_idle(60)
    finally:
        coordinator.stop()
    assert services.runs(connection.id)[0].files_loaded == 1
