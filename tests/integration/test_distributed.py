"""Distributed mode end to end: a real redis-server, real `connectbatch worker` processes, a
real sshd to pull from, and the coordinator's loader in this process (tests/integration/redis.py
starts and stops redis-server by its process id; the workers are stopped by theirs).

What is proved: 50 files across 5 pull connections load exactly once (ledger and data rows);
a worker SIGKILLed mid-parse loses and doubles nothing (its task is delivered again after the
visibility timeout); a second coordinator refuses to start, naming the holder, or waits on
standby and takes over; task payloads hold no secret in clear.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import workers
from ftpd import stop_process
from helpers.ports import free_port
from workers import CLI, worker_env

from connectbatch.models import Connection, Direction, FileState, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import SftpSpec

if TYPE_CHECKING:
    from redisd import RedisServer
    from sshd import Sshd

pytest_plugins = ["sshd", "redisd"]

CallCsv = Callable[..., bytes]
OLD = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
VISIBILITY = 8  # seconds: a killed worker's task comes back this fast in the test


def rows(call_csv: CallCsv, prefix: str, n: int) -> bytes:
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return call_csv(*({"CallSessionId": f"{prefix}-{i}", "EventDate": when} for i in range(n)))


@pytest.fixture
def dist_settings(settings: Settings, redis_server: RedisServer) -> Settings:
    return replace(settings, mode="distributed", redis_url=redis_server.url, visibility_timeout=VISIBILITY)


StartWorker = Callable[[str], subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(dist_settings: Settings, tmp_path: Path) -> Iterator[StartWorker]:
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        started.append(workers.start_worker(dist_settings, tmp_path / f"{name}.log", name))
        return started[-1]

    yield start
    for process in started:  # each worker is its own process group: stopped by its id
        stop_process(process, grace=15)


def pull_connection(services: Services, server: Sshd, name: str, folder: Path) -> Connection:
    draft = Connection(
        name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=server.host, port=server.port, folder=str(folder), pattern="Calls_*.csv", transfer=SftpSpec(),
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", server.user, server.password))
    return created


def data_rows(services: Services) -> int:
    with services.db.connect() as con:
        row = con.execute("SELECT count(*) FROM rows_call_conversions").fetchone()  # table + parts
    assert row is not None
    return int(row[0])


def states(services: Services, connection: Connection) -> list[str]:
    return sorted(str(f.state) for r in services.runs(connection.id) for f in services.run_files(r.id))


def wait_for_workers(settings: Settings, count: int, timeout: float = 30) -> None:
    from connectbatch.distributed.workers import overview

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(overview(settings, timeout=0.5).workers) >= count:
            return
    raise AssertionError(f"{count} workers did not answer within {timeout} s")


def test_fifty_files_on_five_connections_load_exactly_once_with_two_workers(
    services: Services,
    dist_settings: Settings,
    sshd_server: Sshd,
    start_worker: StartWorker,
    call_csv: CallCsv,
) -> None:
    from celery.result import AsyncResult

    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import _Job, _RunState, engine_for
    from connectbatch.pipeline.staging import Received

    connections = []
    for i in range(5):
        folder = sshd_server.make_folder(f"dist{i}-")
        files = [rows(call_csv, f"c{i}f{j}", 20) for j in range(10)]
        for j, data in enumerate(files):
            sshd_server.put(folder, f"Calls_{i}_{j}.csv", data, OLD)
        if i == 0:  # the same bytes twice in one pull: loaded once, then a duplicate (the same
            # bytes, not built again: rows() stamps the time, and a second ticking between made
            # the copy a re-send of the same keys instead)
            sshd_server.put(folder, "Calls_0_copy.csv", files[0], OLD)
        connections.append(pull_connection(services, sshd_server, f"Dist {i}", folder))
    # a server nobody listens on: retried with backoff, then the dead letter (a Failed run)
    dead = pull_connection(services, replace(sshd_server, port=free_port()), "Dead server", folder)
    start_worker("w1")
    start_worker("w2")
    wait_for_workers(dist_settings, 2)
    shown = subprocess.run(
        [CLI, "workers", "--json"], env=worker_env(dist_settings), capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert sorted(w["name"].split("@")[0] for w in view["workers"]) == ["w1", "w2"]
    assert view["queue_depth"] == 0 and view["coordinator"] is None
    engine, coordinator = engine_for(services, make_app(dist_settings))  # the scheduler's pulls are tasks
    try:
        for c in connections:
            assert engine.scheduler.run_now(c) is None  # sent, not run here
        assert coordinator.dispatch_pull(dead, "manual")
        assert not coordinator.dispatch_pull(dead, "manual")  # one run per connection at a time
        assert coordinator.wait_idle(240), [states(services, c) for c in connections]  # a shared machine
        assert states(services, connections[0]) == ["duplicate"] + ["loaded"] * 10
        for c in connections[1:]:
            assert states(services, c) == ["loaded"] * 10
        assert data_rows(services) == 5 * 10 * 20
        [failed] = services.runs(dead.id)
        # Failed, saying why: its retries ended ("pull failed"), or, on a loaded machine, an
        # attempt outran the pull deadline (8 s visibility: 5.3 s) first; never lost or hung
        assert failed.status is RunStatus.FAILED and failed.reason
        assert "pull failed" in failed.reason or "timed out: the pull was still going" in failed.reason
        # the loader meets outputs it already loaded (tasks that ran twice): nothing changes
        run = services.runs(connections[0].id)[0]
        records = [f for f in services.run_files(run.id) if f.state is FileState.LOADED][:2]
        replays = [
            _Job("parse", AsyncResult("no-such-task", app=coordinator.app), connections[0], run_id=run.id,
                 record=record, received=Received(record.name, Path(), "sftp"))
            for record in records
        ]  # fmt: skip
        coordinator._runs[run.id] = _RunState(run, connections[0], {r.id for r in records})
        coordinator._parsed(replays)
        assert data_rows(services) == 1000
        replayed = {r.id for r in records}
        assert all(f.state is FileState.LOADED for f in services.run_files(run.id) if f.id in replayed)
        # the same listing again: settled files are neither fetched nor recorded again
        for c in connections:
            assert coordinator.dispatch_pull(c, "schedule")
        assert coordinator.wait_idle(30)
        assert data_rows(services) == 1000
        assert all(len(services.runs(c.id)) == 1 for c in connections)
    finally:
        coordinator.stop()
    assert coordinator.loaded == 50


def test_embedded_mode_never_imports_celery_or_redis() -> None:
    code = (
        "import sys, connectbatch.cli, connectbatch.engine, connectbatch.services; "
        "import connectbatch.pipeline.ingest; "
        "bad = [m for m in ('celery', 'redis', 'kombu') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def big_file(call_csv: CallCsv, prefix: str, n: int) -> bytes:
    """A call file of `n` rows, built by text (a CSV writer would take longer than the parse)."""
    head, row = rows(call_csv, "X", 1).decode().splitlines()
    return "\n".join([head, *(row.replace("X-0", f"{prefix}-{i}") for i in range(n))]).encode() + b"\n"


def test_the_loader_commits_the_parses_of_a_run_that_are_ready_together_as_one_at_a_time_would(
    services: Services,
    dist_settings: Settings,
    sshd_server: Sshd,
    start_worker: StartWorker,
    call_csv: CallCsv,
) -> None:
    """Group commit in the loader: every parse of the pull is done before the loader looks,
    so one step loads them together; the outcome is that of files loaded one at a time: a
    repeat of another file's keys is held for review, the same bytes twice are a duplicate."""
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator

    folder = sshd_server.make_folder("together-")
    files = [rows(call_csv, f"t{j}", 5 + j) for j in range(6)]
    for j, data in enumerate(files):
        sshd_server.put(folder, f"Calls_{j}.csv", data, OLD)
    sshd_server.put(folder, "Calls_6_copy.csv", files[0], OLD)  # Calls_0's bytes, not built again
    sshd_server.put(folder, "Calls_7_again.csv", rows(call_csv, "t1", 3), OLD)  # keys of Calls_1
    connection = pull_connection(services, sshd_server, "Together", folder)
    start_worker("w1")
    wait_for_workers(dist_settings, 1)
    coordinator = Coordinator(services, make_app(dist_settings))  # its loader thread not started

    assert coordinator.dispatch_pull(connection, "manual")
    assert coordinator.wait_finished("pull", 120)
    assert coordinator.step()  # the listing recorded, the parses sent
    assert coordinator.wait_finished("parse", 120)  # nothing loaded meanwhile
    assert coordinator.step()  # every parse of the run loaded in this one step
    assert coordinator.idle()

    assert coordinator.together == 7  # the copy went one at a time, after (the repeat is
    # held by the group's own "already loaded" check, once the files before it loaded)
    [run] = services.runs(connection.id)
    files = {f.name: str(f.state) for f in services.run_files(run.id)}
    assert files == {
        **{f"Calls_{j}.csv": "loaded" for j in range(6)},
        "Calls_6_copy.csv": "duplicate", "Calls_7_again.csv": "quarantined",
    }  # fmt: skip
    assert run.status is RunStatus.NEEDS_REVIEW and run.rows_accepted == sum(5 + j for j in range(6))
    assert data_rows(services) == sum(5 + j for j in range(6))
    assert services.count_actions() == sum(5 + j for j in range(6))
    assert len([p for p in services.run_results_files(run.id) if p.name.endswith(".summary.json")]) == 8


def test_the_loader_commits_push_uploads_ready_together_in_one_group_each_its_own_run(
    services: Services, dist_settings: Settings, start_worker: StartWorker, call_csv: CallCsv, tmp_path: Path
) -> None:
    """Uploads (each its own run) whose parses are all done when the loader looks: committed
    together, each run closed with its own file, rows and results, as one at a time would."""
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator

    draft = Connection(
        "Pushed together", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH
    )
    connection, _ = services.create_connection(draft)
    start_worker("w1")
    wait_for_workers(dist_settings, 1)
    coordinator = Coordinator(services, make_app(dist_settings))  # its loader thread not started
    uploads = [(f"Calls_{j}.csv", rows(call_csv, f"u{j}", 4 + j)) for j in range(4)]
    uploads += [("Calls_copy.csv", uploads[0][1]), ("Calls_again.csv", rows(call_csv, "u1", 2))]
    for name, data in uploads:
        path = tmp_path / name
        path.write_bytes(data)
        coordinator.submit_file(connection, path)
    assert coordinator.wait_finished("parse", 120)
    assert coordinator.step()
    assert coordinator.idle()

    assert coordinator.together == 5  # the copy of Calls_0's bytes went alone, after
    outcome = {}
    for run in services.runs(connection.id):
        [file] = services.run_files(run.id)
        outcome[file.name] = (run.status, str(file.state), run.rows_accepted, run.files_seen)
    done = RunStatus.COMPLETED
    assert outcome == {
        **{f"Calls_{j}.csv": (done, "loaded", 4 + j, 1) for j in range(4)},
        "Calls_copy.csv": (done, "duplicate", 0, 1),
        "Calls_again.csv": (RunStatus.NEEDS_REVIEW, "quarantined", 0, 1),
    }
    assert data_rows(services) == services.count_actions() == sum(4 + j for j in range(4))


def test_a_worker_killed_mid_parse_loses_and_doubles_nothing(
    services: Services,
    dist_settings: Settings,
    sshd_server: Sshd,
    start_worker: StartWorker,
    call_csv: CallCsv,
) -> None:
    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import Coordinator, _RunState
    from connectbatch.pipeline import staging

    folder = sshd_server.make_folder("kill-")
    sshd_server.put(folder, "Calls_big.csv", big_file(call_csv, "big", 300_000), OLD)
    for j in range(4):
        sshd_server.put(folder, f"Calls_small_{j}.csv", rows(call_csv, f"s{j}", 10), OLD)
    connection = pull_connection(services, sshd_server, "Killed", folder)
    first = start_worker("doomed")
    wait_for_workers(dist_settings, 1)
    coordinator = Coordinator(services, make_app(dist_settings))
    coordinator.start()
    try:
        assert coordinator.dispatch_pull(connection, "manual")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill it once it started parsing (task state STARTED)
            with coordinator._guard:
                jobs = [j for j in coordinator._jobs if j.kind == "parse"]
            if any(j.result.state == "STARTED" for j in jobs):
                break
            time.sleep(0.005)
        else:
            raise AssertionError("the worker never started parsing")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        start_worker("survivor")
        assert coordinator.wait_idle(VISIBILITY + 60)
        assert states(services, connection) == ["loaded"] * 5
        assert data_rows(services) == 300_000 + 4 * 10
        assert coordinator.loaded == 5
        # a parse task that cannot succeed (its staged copy is gone): no retry, the dead letter
        run = services.ingestor.start_run(connection, "manual")
        gone = staging.Staged("0" * 64, 5, dist_settings.staging / ("0" * 64))
        received = staging.Received("Calls_gone.csv", gone.path, "sftp")
        entry = staging.record(services.db, run, connection, received, gone)
        state = _RunState(run, connection)
        coordinator._runs[run.id] = state
        coordinator._dispatch_parse(state, entry.record, received, gone)
        assert coordinator.wait_idle(60)
    finally:
        coordinator.stop()
    [failed] = services.run_files(run.id)
    assert failed.state is FileState.FAILED and failed.message
    assert "parse failed on a worker: StagingError" in failed.message and "is gone" in failed.message
    assert services.runs(connection.id)[0].status is RunStatus.FAILED


def coordinator_cli(settings: Settings, *extra: str) -> subprocess.Popen[str]:
    env = worker_env(settings)
    env.update(CONNECTBATCH_SFTP_PORT="0", CONNECTBATCH_FTP_PORT="0")
    return subprocess.Popen(
        [CLI, "serve", "--coordinator", "--no-servers", *extra], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def read_until(process: subprocess.Popen[str], needle: str, timeout: float = 30) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen += line
        if needle in line:
            return seen
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"{needle!r} not printed; got {seen!r}")


def stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    return process.wait(timeout=30)


def test_a_second_coordinator_refuses_or_waits_on_standby(dist_settings: Settings) -> None:
    first = coordinator_cli(dist_settings)
    standby: subprocess.Popen[str] | None = None
    try:
        read_until(first, "serving")
        second = coordinator_cli(dist_settings)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 75  # EXIT_BUSY
        assert f":{first.pid})" in err and "--standby" in err
        standby = coordinator_cli(dist_settings, "--standby")
        read_until(standby, f":{first.pid} is running; waiting")
        assert stop(first) == 0  # releases the lock on the way out
        taken = read_until(standby, "coordinator lock held by", timeout=30)
        assert f":{standby.pid}" in taken
    finally:
        stop(first)
        if standby is not None:
            stop(standby)


def test_task_payloads_hold_no_secret_in_clear(settings: Settings) -> None:
    from connectbatch.distributed.sealed import seal, unseal
    from connectbatch.errors import ConfigurationError
    from connectbatch.secrets import SecretBox

    box = SecretBox.for_home(settings.home)
    token = seal(box, {"password": "hunter2-Very-Secret"})
    assert "hunter2" not in token
    assert unseal(box, token) == {"password": "hunter2-Very-Secret"}
    with pytest.raises(ConfigurationError):  # another installation's key (or a forged token)
        unseal(SecretBox(_key()), token)


def test_a_task_from_other_code_is_refused_naming_both_fingerprints(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distributed audit: a worker left on an older release was accepted without a word and
    loaded the key "NULL" that the coordinator's own parser refuses. Every task now carries the
    sender's code fingerprint (connectbatch/release.py), and a worker refuses another one."""
    from connectbatch import release
    from connectbatch.distributed.sealed import seal, unseal
    from connectbatch.errors import ConfigurationError
    from connectbatch.secrets import SecretBox

    box = SecretBox.for_home(settings.home)
    ours = release.fingerprint()
    monkeypatch.setattr(release, "fingerprint", lambda: "0123456789abcdef")  # the coordinator's
    token = seal(box, {"run_id": 7})
    monkeypatch.setattr(release, "fingerprint", lambda: ours)  # this worker's
    with pytest.raises(ConfigurationError) as raised:
        unseal(box, token)
    assert f"(fingerprint {ours}) than the coordinator that sent the task (0123456789abcdef)" in str(
        raised.value
    )
    assert unseal(box, seal(box, {"run_id": 7})) == {"run_id": 7}


def _key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


def test_a_sealed_payload_builds_only_connectbatch_data(settings: Settings) -> None:
    """Even with the key (a leaked one), a payload cannot make a worker call an arbitrary
    function: the unpickler resolves ConnectBatch's classes and plain value types only."""
    import base64
    import datetime as dt
    import os
    import pickle
    import zoneinfo

    from connectbatch.distributed.sealed import seal, unseal
    from connectbatch.models import Connection
    from connectbatch.secrets import SecretBox

    box = SecretBox.for_home(settings.home)
    connection = Connection(
        name="Acme", data_type="call_conversions", direction="inbound",  # type: ignore[arg-type]
        method="sftp", methodology="pull",  # type: ignore[arg-type]
    )  # fmt: skip
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    local = dt.datetime(2026, 12, 4, tzinfo=zoneinfo.ZoneInfo("America/New_York"))
    payload = {"connection": connection, "now": now, "local": local, "method": Method.SFTP}
    assert unseal(box, seal(box, payload)) == payload

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("true",))

    # getattr on a module one of ours imports (`os` in connectbatch.store.db), by hand:
    # GLOBAL getattr, GLOBAL connectbatch.store.db os, "system", TUPLE2, REDUCE
    reach = b"cbuiltins\ngetattr\ncconnectbatch.store.db\nos\nX\x06\x00\x00\x00system\x86R."
    for hostile in (pickle.dumps({"x": Evil()}), reach):
        raw = base64.b64encode(hostile).decode("ascii")
        with pytest.raises(pickle.UnpicklingError, match="may not"):
            unseal(box, box.encrypt(raw).decode("ascii"))


def test_pushed_files_are_parsed_by_workers_and_load_exactly_once(
    services: Services, dist_settings: Settings, start_worker: StartWorker, call_csv: CallCsv
) -> None:
    """Uploads to our hosted SFTP server in distributed mode, from three clients at once: the
    coordinator stages and records each one, a worker parses it, the loader commits it (its
    writes and the uploads' take turns: DuckDB refuses two transactions on one connection row);
    the same bytes pushed again are a duplicate, and nothing loads twice."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    import paramiko

    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import engine_for
    from connectbatch.transfer.push.gateway import Gateway
    from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

    draft = Connection("Pushed", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    connection, login = services.create_connection(draft)
    assert login is not None
    start_worker("w1")
    wait_for_workers(dist_settings, 1)
    engine, coordinator = engine_for(services, make_app(dist_settings))
    gateway = Gateway(services, ingest=engine._push_ingest)  # as the engine's servers take uploads
    server = HostedSftpServer(gateway, "127.0.0.1", 0, host_key_path(services.settings.home)).start()

    def upload(files: list[tuple[str, bytes]]) -> None:
        transport = paramiko.Transport(("127.0.0.1", server.port))
        transport.connect(username=login.username, password=login.password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        for name, data in files:
            sftp.putfo(io.BytesIO(data), name)
        sftp.close()
        transport.close()

    try:  # three clients at once: loads and new push runs overlap
        files = [(f"Calls_{i}.csv", rows(call_csv, f"push{i}", 10)) for i in range(12)]
        batches = [files[c::3] for c in range(3)]
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(upload, batches))
        gateway.wait(60)
        assert coordinator.wait_idle(180)
        upload([("Calls_again.csv", files[0][1])])  # the same bytes again
        gateway.wait(60)
        assert coordinator.wait_idle(180)
        runs = services.runs(connection.id)
        assert len(runs) == 13 and all(r.trigger == "push" for r in runs)
        assert sorted(states(services, connection)) == ["duplicate"] + ["loaded"] * 12
        assert data_rows(services) == 120
        assert coordinator.loaded == 12  # every load went through the loader, none in-process
        assert list((services.settings.home / "push" / str(connection.id)).iterdir()) == []
    finally:
        server.stop()
        gateway.close()
        coordinator.stop()


def test_plain_serve_refuses_in_distributed_mode(tmp_path: Path) -> None:
    """`serve` without --coordinator would run an embedded scheduler beside the coordinator
    (every pull twice): it refuses and says what to start instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
    env.update(
        CONNECTBATCH_HOME=str(tmp_path / "home"), CONNECTBATCH_MODE="distributed",
        CONNECTBATCH_REDIS_URL="redis://127.0.0.1:1/0",
    )  # fmt: skip
    done = subprocess.run(
        [CLI, "serve", "--no-servers"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "serve --coordinator" in done.stderr and "connectbatch worker" in done.stderr


def test_a_worker_judges_a_file_by_the_coordinators_rules_not_its_own(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A distributed audit: a worker started with CONNECTBATCH_MAX_AGE_DAYS=1 held a batch
    that the coordinator's 90 days loaded: the outcome hung on which worker took the file.
    A parse task carries the coordinator's verdict settings, and the worker uses them."""
    import dataclasses

    from connectbatch.distributed import tasks
    from connectbatch.distributed.sealed import seal
    from connectbatch.secrets import SecretBox

    coordinator = dataclasses.replace(settings, validation_max_age_days=90, max_reject_rate=0.2)
    worker = dataclasses.replace(settings, validation_max_age_days=1, max_reject_rate=0.01)
    used: list[Settings] = []
    monkeypatch.setattr(tasks, "worker_settings", lambda: worker)
    monkeypatch.setattr(tasks.staging, "verify", lambda staging, sha256: tmp_path / sha256)
    monkeypatch.setattr(tasks.ingest, "compute", lambda s, *args: used.append(s) or object())
    monkeypatch.setattr(tasks.output, "write", lambda *args: None)
    connection = Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    payload = {
        "connection": connection, "sha256": "ab" * 32, "run_id": 1, "mapping": None,
        "now": dt.datetime(2026, 12, 7, tzinfo=dt.UTC), "verdict": tasks.verdict_settings(coordinator),
    }  # fmt: skip
    tasks.parse(seal(SecretBox.for_home(settings.home), payload))
    [judged] = used
    assert (judged.validation_max_age_days, judged.max_reject_rate) == (90, 0.2)
