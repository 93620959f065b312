"""Push to us and Pull from us over our hosted SFTP server, end to end on 127.0.0.1.

Real sockets, real paramiko clients logging in with the credentials `Services.create_connection`
provisioned, the real `Gateway` (so a finished upload really becomes a run in DuckDB): an upload
is ingested once it is closed or renamed from `.part`; 20 clients at once all land exactly once;
one login cannot see, read or write another's folder (`..`, absolute host paths, planted
symlinks); wrong passwords and oversized files are refused; an outbound login downloads its
results and cannot upload; a client speaking nonsense cannot take the server down.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from helpers import call_csv

from connectbatch.models import Connection, Direction, Method, Methodology, Run, RunStatus
from connectbatch.services import Provisioned, Services
from connectbatch.settings import Settings
from connectbatch.transfer.push import gateway as gateway_module
from connectbatch.transfer.push.gateway import PUSH_UNMATCHED, Gateway
from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

INGEST_TIMEOUT = 60.0


@dataclass
class Hosted:
    """One data directory with its engine side: services, gateway and a running server."""

    services: Services
    gateway: Gateway
    server: HostedSftpServer

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def push(self, name: str) -> tuple[Connection, Provisioned]:
        """A new inbound "Push to us" SFTP connection of call conversions and its login."""
        return self._create(name, Direction.INBOUND, Methodology.PUSH)

    def outbound(self, name: str) -> tuple[Connection, Provisioned]:
        """A new outbound "Pull from us" SFTP connection and its login."""
        return self._create(name, Direction.OUTBOUND, Methodology.PULL_FROM_US)

    def _create(
        self, name: str, direction: Direction, methodology: Methodology
    ) -> tuple[Connection, Provisioned]:
        draft = Connection(
            name=name,
            data_type="call_conversions",
            direction=direction,
            method=Method.SFTP,
            methodology=methodology,
        )
        connection, provisioned = self.services.create_connection(draft)
        assert provisioned is not None, "push and pull-from-us connections get a login"
        return connection, provisioned

    def push_home(self, connection: Connection) -> Path:
        return self.settings.home / "push" / str(connection.id)

    @contextlib.contextmanager
    def login(self, provisioned: Provisioned) -> Iterator[paramiko.SFTPClient]:
        """An SFTP session as the partner opens one, with the provisioned credentials."""
        with client(provisioned.host, self.server.port, provisioned.username, provisioned.password) as sftp:
            yield sftp


@contextlib.contextmanager
def client(host: str, port: int, username: str, password: str) -> Iterator[paramiko.SFTPClient]:
    transport = paramiko.Transport((host, port))
    try:
        transport.connect(username=username, password=password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        try:
            yield sftp
        finally:
            sftp.close()
    finally:
        transport.close()


def start(tmp: Path, **settings: object) -> Hosted:
    services = Services(Settings(home=tmp / "home", lock_timeout=10.0, sftp_port=0, **settings))  # type: ignore[arg-type]
    gateway = Gateway(services, workers=2)
    server = HostedSftpServer(
        gateway,
        "127.0.0.1",
        0,
        host_key_path(services.settings.home),
        max_connections_per_address=services.settings.max_connections_per_address,
        preauth_timeout=services.settings.preauth_timeout,
        max_sessions_per_login=services.settings.max_sessions_per_login,
    ).start()
    return Hosted(services, gateway, server)


def shut(hosted: Hosted) -> None:
    hosted.server.stop()
    hosted.gateway.close()


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    """One data directory and server for the module (creating connections is cheap, a server
    and a DuckDB file per test are not)."""
    # Every client here comes from 127.0.0.1, and one test opens 20 sessions of one login at
    # once: more than the default connections per address and sessions per login (a partner
    # that parallel raises the limits the same way).
    engine = start(tmp_path_factory.mktemp("push"), max_connections_per_address=32, max_sessions_per_login=32)
    try:
        yield engine
    finally:
        shut(engine)


# --- Push to us ------------------------------------------------------------------------------------


def test_an_upload_becomes_a_completed_run_with_rows_and_actions(hosted: Hosted) -> None:
    connection, login = hosted.push("Push Acme")
    assert login.host == "127.0.0.1" and login.username and login.password
    with hosted.login(login) as sftp:
        assert sftp.normalize(".") == "/"
        assert sftp.listdir("/") == []
        sftp.putfo(_bytes_io(call_csv(12, prefix="acme")), "Conversions_2024_acme.csv")
    hosted.gateway.wait(INGEST_TIMEOUT)

    runs = hosted.services.runs(connection.name)
    assert len(runs) == 1
    run = runs[0]
    assert run.status is RunStatus.COMPLETED, run.reason
    assert run.trigger == "push"
    assert (run.files_loaded, run.rows_accepted, run.rows_rejected, run.actions_created) == (1, 12, 0, 12)
    assert [f.name for f in hosted.services.run_files(run.id)] == ["Conversions_2024_acme.csv"]
    assert hosted.services.count_actions(connection.name) == 12
    assert hosted.services.connection(connection.name).status.value == "Completed"


def test_an_upload_the_file_pattern_does_not_match_is_left_with_a_history_line(hosted: Hosted) -> None:
    """A `_SUCCESS` marker or a checksum beside the CSV made a Failed run (and the connection
    Failed) though the connection's pattern says which files it takes."""
    draft = Connection(name="Push patterned", data_type="call_conversions", direction=Direction.INBOUND,
                       method=Method.SFTP, methodology=Methodology.PUSH, pattern="Calls_*.csv")  # fmt: skip
    connection, login = hosted.services.create_connection(draft)
    assert login is not None
    with hosted.login(login) as sftp:
        sftp.putfo(_bytes_io(call_csv(4, prefix="pat")), "Calls_1.csv")
        sftp.putfo(_bytes_io(b""), "_SUCCESS")
        sftp.putfo(_bytes_io(b"d41d8cd98f00b204e9800998ecf8427e  Calls_1.csv\n"), "Calls_1.csv.md5")
    hosted.gateway.wait(INGEST_TIMEOUT)

    runs = hosted.services.runs(connection.name)
    assert [(r.status, r.files_loaded) for r in runs] == [(RunStatus.COMPLETED, 1)]
    assert hosted.services.connection(connection.name).status.value == "Completed"
    lines = [e.message for e in hosted.services.connection_events(connection.id) if e.kind == PUSH_UNMATCHED]
    assert sorted(line.split(":")[0] for line in lines) == ["Calls_1.csv.md5", "_SUCCESS"]
    assert all("does not match the connection's file pattern 'Calls_*.csv'" in line for line in lines)
    left = sorted(p.name for p in hosted.push_home(connection).iterdir())
    assert left == ["Calls_1.csv.md5", "_SUCCESS"]  # never dropped


def test_a_part_file_is_ingested_once_when_renamed(hosted: Hosted) -> None:
    connection, login = hosted.push("Push Partial")
    data = call_csv(8, prefix="part")
    with hosted.login(login) as sftp:
        sftp.putfo(_bytes_io(data), "calls.csv.part")
        hosted.gateway.wait(INGEST_TIMEOUT)
        assert hosted.services.runs(connection.name) == []  # still "in flight": not touched
        assert sftp.stat("calls.csv.part").st_size == len(data)

        sftp.rename("calls.csv.part", "calls.csv")
        hosted.gateway.wait(INGEST_TIMEOUT)
        runs = hosted.services.runs(connection.name)
        assert len(runs) == 1 and runs[0].status is RunStatus.COMPLETED, runs
        assert [f.name for f in hosted.services.run_files(runs[0].id)] == ["calls.csv"]

        # WinSCP's way: ".filepart", then posix-rename over the final name.
        sftp.putfo(_bytes_io(call_csv(5, prefix="winscp")), "more.csv.filepart")
        hosted.gateway.wait(INGEST_TIMEOUT)
        assert len(hosted.services.runs(connection.name)) == 1
        sftp.posix_rename("more.csv.filepart", "more.csv")
    hosted.gateway.wait(INGEST_TIMEOUT)
    runs = hosted.services.runs(connection.name)
    assert len(runs) == 2 and {r.status for r in runs} == {RunStatus.COMPLETED}
    assert sorted(r.rows_accepted for r in runs) == [5, 8]


def test_setting_times_after_an_upload_that_was_already_taken_in_succeeds(hosted: Hosted) -> None:
    """WinSCP (preserve timestamp, on by default) and scripts set the file's time by path
    after the close or the rename from `.filepart`; by then the upload may be ingested and
    gone. That must not turn a good upload into an error on the partner's side."""
    connection, login = hosted.push("Push Touch")
    with hosted.login(login) as sftp:
        sftp.putfo(_bytes_io(call_csv(3, prefix="touch")), "calls.csv")
        sftp.putfo(_bytes_io(call_csv(2, prefix="winscp")), "more.csv.filepart")
        sftp.posix_rename("more.csv.filepart", "more.csv")
        hosted.gateway.wait(INGEST_TIMEOUT)
        assert sftp.listdir("/") == []  # both taken in and removed
        for name in ("calls.csv", "more.csv"):
            sftp.utime(name, (1_700_000_000, 1_700_000_000))
            sftp.chmod(name, 0o644)
        with pytest.raises(FileNotFoundError):  # a name never uploaded is still missing
            sftp.utime("other.csv", (1_700_000_000, 1_700_000_000))
    runs = hosted.services.runs(connection.name)
    assert sorted((r.status, r.rows_accepted) for r in runs) == [
        (RunStatus.COMPLETED, 2),
        (RunStatus.COMPLETED, 3),
    ]


def test_a_file_renamed_while_still_open_is_ingested_when_closed(hosted: Hosted) -> None:
    connection, login = hosted.push("Push Early Rename")
    data = call_csv(4, prefix="early")
    with hosted.login(login) as sftp:
        remote = sftp.open("early.csv.tmp", "w")
        remote.write(data[:100])
        remote.flush()
        sftp.rename("early.csv.tmp", "early.csv")
        hosted.gateway.wait(INGEST_TIMEOUT)
        assert hosted.services.runs(connection.name) == []  # not complete yet
        remote.write(data[100:])
        remote.close()
    hosted.gateway.wait(INGEST_TIMEOUT)
    runs = hosted.services.runs(connection.name)
    assert len(runs) == 1 and runs[0].status is RunStatus.COMPLETED and runs[0].rows_accepted == 4


def test_an_interrupted_upload_is_not_ingested(hosted: Hosted) -> None:
    connection, login = hosted.push("Push Interrupted")
    transport = paramiko.Transport((login.host, hosted.server.port))
    try:
        transport.connect(username=login.username, password=login.password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        remote = sftp.open("half.csv", "w")
        remote.write(call_csv(20, prefix="half")[:500])
        remote.flush()
    finally:
        transport.close()  # the connection drops with the file still open
    deadline = time.monotonic() + 5
    while hosted.server.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    hosted.gateway.wait(INGEST_TIMEOUT)
    assert hosted.services.runs(connection.name) == []
    assert (hosted.push_home(connection) / "half.csv").stat().st_size == 500  # left for a retry


def test_twenty_concurrent_uploads_each_land_exactly_once(hosted: Hosted) -> None:
    connection, login = hosted.push("Push Many")
    uploads = 20
    barrier = threading.Barrier(uploads)
    errors: list[BaseException] = []

    def upload(index: int) -> None:
        try:
            with hosted.login(login) as sftp:
                barrier.wait(timeout=30)
                sftp.putfo(_bytes_io(call_csv(6, prefix=f"many{index:02d}")), f"calls_{index:02d}.csv")
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(uploads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    hosted.gateway.wait(INGEST_TIMEOUT)

    runs = hosted.services.runs(connection.name)
    assert len(runs) == uploads
    assert all(r.status is RunStatus.COMPLETED for r in runs), [r.reason for r in runs]
    names = [f.name for r in runs for f in hosted.services.run_files(r.id)]
    assert sorted(names) == [f"calls_{i:02d}.csv" for i in range(uploads)]  # each once
    assert sum(r.rows_accepted for r in runs) == uploads * 6
    assert hosted.services.count_actions(connection.name) == uploads * 6


def test_uploads_waiting_for_their_connection_go_in_together_each_its_own_run(
    hosted: Hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a connection's upload is being ingested, the ones finishing meanwhile wait and go
    in as groups of at most GROUP_MAX_FILES (`Services.ingest_files`: group commit), each still
    its own run with its own rows, actions and results file; the uploads then go."""
    monkeypatch.setattr(gateway_module, "GROUP_MAX_FILES", 4)
    connection, login = hosted.push("Push Burst")
    first_turn, uploaded = threading.Event(), threading.Event()
    groups: list[list[str]] = []

    def take(connection_id: int, paths: list[Path]) -> list[Run]:
        groups.append([p.name for p in paths])
        if len(groups) == 1:  # the first upload's turn lasts until the others have arrived
            first_turn.set()
            assert uploaded.wait(INGEST_TIMEOUT)
        return hosted.services.ingest_files(connection_id, list(paths), "push")

    gateway = Gateway(hosted.services, workers=2, ingest=take)
    server = HostedSftpServer(gateway, "127.0.0.1", 0, host_key_path(hosted.settings.home)).start()
    names = [f"burst_{i:02d}.csv" for i in range(10)]
    try:
        with client(login.host, server.port, login.username, login.password) as sftp:
            for index, name in enumerate(names):
                sftp.putfo(_bytes_io(call_csv(5, prefix=f"burst{index:02d}")), name)
                if index == 0:
                    assert first_turn.wait(INGEST_TIMEOUT)
            # the same name again before its turn: one ingest of the bytes there now
            sftp.putfo(_bytes_io(call_csv(5, prefix="burst09")), names[-1])
        uploaded.set()
        gateway.wait(INGEST_TIMEOUT)
    finally:
        server.stop()
        gateway.close()

    assert groups[0] == names[:1] and sorted(len(g) for g in groups[1:]) == [1, 4, 4]
    assert [n for g in groups for n in g] == names  # in arrival order, each once
    runs = hosted.services.runs(connection.name)
    assert len(runs) == len(names)
    assert all(r.status is RunStatus.COMPLETED and r.trigger == "push" for r in runs), runs
    assert all((r.files_loaded, r.rows_accepted, r.actions_created) == (1, 5, 5) for r in runs)
    assert sorted(f.name for r in runs for f in hosted.services.run_files(r.id)) == names
    assert hosted.services.count_actions(connection.name) == 5 * len(names)
    assert list(hosted.push_home(connection).iterdir()) == []  # every upload handled went


def test_an_upload_deleted_before_its_groups_ingest_leaves_the_others_ingested(hosted: Hosted) -> None:
    """A partner deletes one of the waiting uploads just before their group's turn: the group
    call is refused before anything is recorded, and the others are each taken alone."""
    connection, login = hosted.push("Push Vanishing")
    calls: list[list[str]] = []

    def take(connection_id: int, paths: list[Path]) -> list[Run]:
        calls.append([p.name for p in paths])
        if len(calls) == 1:  # gone after the gateway's check, before the ingest
            paths[1].unlink()  # (the name the ingest reads, and the partner's)
            (home / paths[1].name).unlink()
        return hosted.services.ingest_files(connection_id, list(paths), "push")

    gateway = Gateway(hosted.services, workers=1, ingest=take)
    account = gateway.account(login.username, hosted.services.connection(connection.id))
    home = hosted.push_home(connection)
    names = ["a.csv", "b.csv", "c.csv"]
    hold = threading.Lock()
    try:
        with hold:  # the uploads all wait for one turn
            gateway._connection_locks[connection.id] = hold
            futures = []
            for index, name in enumerate(names):
                (home / name).write_bytes(call_csv(4, prefix=f"vanish{index}"))
                futures.append(gateway.upload_complete(account, home / name))
        gateway.wait(INGEST_TIMEOUT)
    finally:
        gateway.close()
    assert calls == [names, ["a.csv"], ["c.csv"]]
    results = [f.result() if f is not None else None for f in futures]
    assert results[1] is None and all(r is not None and r.status is RunStatus.COMPLETED for r in results[::2])
    runs = hosted.services.runs(connection.name)
    assert sorted(f.name for r in runs for f in hosted.services.run_files(r.id)) == ["a.csv", "c.csv"]
    assert list(home.iterdir()) == []


def test_a_login_sees_and_reaches_only_its_own_folder(hosted: Hosted) -> None:
    first, first_login = hosted.push("Push Isolated One")
    second, second_login = hosted.push("Push Isolated Two")
    with hosted.login(first_login) as sftp:
        sftp.putfo(_bytes_io(b"private bytes"), "private.csv.part")  # stays: in flight
    first_home = hosted.push_home(first)
    secret = first_home / "private.csv.part"
    assert secret.read_bytes() == b"private bytes"

    # Links someone planted in the second home, pointing out of it.
    second_home = hosted.push_home(second)
    second_home.mkdir(parents=True, exist_ok=True)
    (second_home / "peek.csv").symlink_to(secret)
    (second_home / "up").symlink_to(hosted.settings.home, target_is_directory=True)

    with hosted.login(second_login) as sftp:
        assert sftp.normalize(".") == "/"
        assert sftp.normalize("../../..") == "/"  # only a name: it grants nothing
        assert sftp.listdir("/") == []  # not the other folder, not the links out
        sibling = f"../{first.id}"
        for path in (
            f"{sibling}/private.csv.part",
            f"/../{first.id}/private.csv.part",
            "peek.csv",
            "up/secret.key",
        ):
            with pytest.raises(PermissionError):
                sftp.open(path).read()
        for folder in (sibling, "..", "/..", "up", "up/push"):
            with pytest.raises(PermissionError):
                sftp.listdir(folder)
        for absolute in (str(secret), str(first_home), "/etc/passwd", str(hosted.settings.key_file)):
            with pytest.raises(OSError):  # there is no such path below this login's "/"
                sftp.stat(absolute)
            with pytest.raises(OSError):
                sftp.open(absolute).read()
        for target in (f"{sibling}/planted.csv", "up/planted.csv", "../planted.csv", "peek.csv"):
            with pytest.raises(PermissionError):
                sftp.putfo(_bytes_io(b"x"), target)
        with pytest.raises(PermissionError):
            sftp.rename("peek.csv", "mine.csv")
        with pytest.raises(PermissionError):
            sftp.remove(f"{sibling}/private.csv.part")
        with pytest.raises(PermissionError):
            sftp.mkdir("../escape")
        with pytest.raises(OSError):
            sftp.symlink(str(secret), "link.csv")
        with pytest.raises(PermissionError):
            sftp.open("a\x00b.csv", "w")

    assert secret.read_bytes() == b"private bytes"
    assert sorted(p.name for p in first_home.iterdir()) == ["private.csv.part"]
    assert not (hosted.settings.home / "planted.csv").exists()
    assert not (hosted.settings.home / "push" / "planted.csv").exists()
    assert hosted.services.runs(first.name) == [] and hosted.services.runs(second.name) == []


def test_folders_inside_the_home_work(hosted: Hosted) -> None:
    connection, login = hosted.push("Push Folders")
    with hosted.login(login) as sftp:
        sftp.mkdir("incoming")
        sftp.putfo(_bytes_io(call_csv(3, prefix="sub")), "incoming/../incoming/calls.csv")
        hosted.gateway.wait(INGEST_TIMEOUT)
        assert sftp.listdir("incoming") == []  # ingested, then removed by the gateway
        sftp.rmdir("incoming")
        assert sftp.listdir("/") == []
    runs = hosted.services.runs(connection.name)
    assert len(runs) == 1 and runs[0].status is RunStatus.COMPLETED


def test_wrong_passwords_are_refused_and_the_third_closes_the_connection(hosted: Hosted) -> None:
    _connection, login = hosted.push("Push Locked")
    tries: dict[str, list[float]] = {login.username: [], "cb_nobody_000000": []}
    # Three rounds, the kinds in turn and their order swapped each round: the least time of
    # each kind is compared, so that attempts slowed by a loaded machine (1.09 against 0.55 s
    # once, and both of one kind ~0.3 s slower in one round order once, in fresh clones' CI)
    # are not read as a difference between the kinds. Six failures stay below the address's limit.
    kinds = [(login.username, login.password + "x"), ("cb_nobody_000000", login.password)]
    for round_ in range(3):
        for user, password in kinds if round_ % 2 == 0 else kinds[::-1]:
            attempt = paramiko.Transport((login.host, hosted.server.port))
            try:
                attempt.start_client(timeout=10)  # the key exchange, timed apart: its cost varies with load
                started = time.monotonic()
                with pytest.raises(paramiko.AuthenticationException):
                    attempt.auth_password(user, password)
                tries[user].append(time.monotonic() - started)
            finally:
                attempt.close()
    timings = [min(t) for t in tries.values()]
    # A wrong password (password-hash check) and an unknown user (none) take the same, padded, time.
    assert abs(timings[0] - timings[1]) < 0.25, tries

    transport = paramiko.Transport((login.host, hosted.server.port))
    try:
        transport.start_client(timeout=10)
        for _attempt in range(3):
            started = time.monotonic()
            with pytest.raises(paramiko.SSHException):  # AuthenticationException, or closed
                transport.auth_password(login.username, "wrong password")
            assert time.monotonic() - started >= 0.4
        deadline = time.monotonic() + 5
        while transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not transport.is_active(), "the server keeps the connection open after 3 failures"
    finally:
        transport.close()

    with hosted.login(login) as sftp:  # the right password still works on a new connection
        assert sftp.listdir("/") == []


def test_a_file_over_the_size_limit_is_refused_and_not_ingested(tmp_path: Path) -> None:
    small = start(tmp_path, max_file_bytes=1024)
    try:
        connection, login = small.push("Push Small")
        big = call_csv(40, prefix="big")
        assert len(big) > 1024
        with small.login(login) as sftp:
            too_large = pytest.raises(OSError, match="too large: the limit is 1024 bytes")
            with too_large, sftp.open("big.csv", "w") as remote:
                remote.write(big)
            assert sftp.listdir("/") == []  # the partial file is gone
            # put() pipelines its writes and paramiko drops their errors on close, but the
            # file is gone when put() checks its size: the upload fails all the same.
            with pytest.raises(OSError):
                sftp.putfo(_bytes_io(big), "big.csv")
            assert sftp.listdir("/") == []
            small.gateway.wait(INGEST_TIMEOUT)
            assert small.services.runs(connection.name) == []

            fits = call_csv(3, prefix="fits")
            assert len(fits) <= 1024
            sftp.putfo(_bytes_io(fits), "fits.csv")
        small.gateway.wait(INGEST_TIMEOUT)
        runs = small.services.runs(connection.name)
        assert len(runs) == 1 and runs[0].rows_accepted == 3
    finally:
        shut(small)


# --- Pull from us ----------------------------------------------------------------------------------


def test_an_outbound_login_downloads_its_results_and_cannot_upload(hosted: Hosted) -> None:
    connection, login = hosted.outbound("Results for Acme")
    folder = hosted.settings.outbound / str(connection.id)
    folder.mkdir(parents=True, exist_ok=True)
    results = b"Line,Status,Reason\r\n2,accepted,\r\n" * 1000
    (folder / "results_2024.csv").write_bytes(results)

    with hosted.login(login) as sftp:
        listing = {entry.filename: entry for entry in sftp.listdir_attr("/")}
        assert list(listing) == ["results_2024.csv"]
        assert listing["results_2024.csv"].st_size == len(results)
        with sftp.open("results_2024.csv") as remote:
            remote.prefetch()
            assert remote.read() == results

        with pytest.raises(PermissionError):
            sftp.putfo(_bytes_io(call_csv(2)), "upload.csv")
        with pytest.raises(PermissionError):
            sftp.open("results_2024.csv", "a").write(b"more")
        with pytest.raises(PermissionError):
            sftp.rename("results_2024.csv", "renamed.csv")
        with pytest.raises(PermissionError):
            sftp.remove("results_2024.csv")
        with pytest.raises(PermissionError):
            sftp.mkdir("folder")
        with pytest.raises(PermissionError):
            sftp.chmod("results_2024.csv", 0o777)

    assert sorted(p.name for p in folder.iterdir()) == ["results_2024.csv"]
    assert (folder / "results_2024.csv").read_bytes() == results
    assert hosted.services.runs(connection.name) == []


def _stopped_export(
    services: Services, monkeypatch: pytest.MonkeyPatch, partner: str
) -> tuple[Path, str, Provisioned]:
    """An export of `partner`'s pickup stopped between its commit and its rename (a crash,
    a restart): its rows are recorded as exported, its file still in flight, `.export-….tmp`.
    Returns the pickup's folder, the export's own name and the pickup's login."""
    from connectbatch.store import exports as export_store

    services.add_partner(partner, "brand")
    for name, direction, methodology in (
        (f"{partner} calls", Direction.INBOUND, Methodology.PUSH),
        (f"{partner} pickup", Direction.OUTBOUND, Methodology.PULL_FROM_US),
    ):
        draft = Connection(name, "call_conversions", direction, Method.SFTP, methodology)
        _, login = services.create_connection(draft, partner=partner)
    assert login is not None
    services.ingest_bytes(f"{partner} calls", "calls.csv", call_csv(3, prefix=partner.lower()))

    def stopped(_target: Path) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(export_store, "publish", stopped)
        with pytest.raises(KeyboardInterrupt):
            services.export_now(f"{partner} pickup")
    [ledger] = services.exports(f"{partner} pickup")
    assert ledger.file_name is not None
    folder = services.settings.outbound / str(services.connection(f"{partner} pickup").id)
    return folder, ledger.file_name, login


def test_an_outbound_login_never_sees_a_file_still_in_flight(
    hosted: Hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partner's pickup folder holds files we have not published yet (an export whose
    rename has not happened, a status file or results staged under a hidden name): listing,
    stat and download must not show them, or a partner collecting everything gets the rows
    of the export now and again once the next export publishes it."""
    services = hosted.services
    folder, name, login = _stopped_export(services, monkeypatch, "Inflight")
    staged = [f".{name}.tmp", ".tmp-status-9-000001-20260101T000000.csv", ".tmp-abc123.summary.json"]
    for leftover in staged[1:]:
        (folder / leftover).write_bytes(b"half")
    assert sorted(p.name for p in folder.iterdir()) == sorted(staged)

    with hosted.login(login) as sftp:
        assert sftp.listdir("/") == []
        for hidden in staged:
            with pytest.raises(FileNotFoundError):
                sftp.stat(hidden)
            with pytest.raises(FileNotFoundError):
                sftp.open(hidden).read()

    assert services.export_now("Inflight pickup") is None  # nothing new: it publishes the stopped one
    with hosted.login(login) as sftp:
        assert sftp.listdir("/") == [name]
        with sftp.open(name) as remote:
            assert len(remote.read().decode().splitlines()) == 4  # the header and 3 rows, once


# --- the server itself -----------------------------------------------------------------------------


def test_the_host_key_is_kept_private_and_reused(hosted: Hosted) -> None:
    path = hosted.server.host_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert hosted.server.host_key_line.startswith("ssh-ed25519 ")
    again = HostedSftpServer(hosted.gateway, "127.0.0.1", 0, path)
    assert again.host_key_fingerprint == hosted.server.host_key_fingerprint

    transport = paramiko.Transport(("127.0.0.1", hosted.server.port))
    try:
        transport.start_client(timeout=10)
        presented = transport.get_remote_server_key()
        assert f"{presented.get_name()} {presented.get_base64()}" == hosted.server.host_key_line
    finally:
        transport.close()


def test_a_misbehaving_client_cannot_take_the_server_down(hosted: Hosted) -> None:
    _connection, login = hosted.push("Push Robust")
    port = hosted.server.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(4096))
        with contextlib.suppress(OSError):
            raw.recv(1024)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"SSH-2.0-evil\r\n")  # then hang up mid-handshake

    # A logged-in client that sends garbage instead of SFTP packets.
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(username=login.username, password=login.password)
        channel = transport.open_session()
        channel.invoke_subsystem("sftp")
        channel.sendall(b"\xff\xff\xff\xff" + os.urandom(64))
        channel.settimeout(5)
        assert channel.recv(1024) == b""  # the server closes this channel, and only this one
    finally:
        transport.close()

    with hosted.login(login) as sftp:  # everyone else carries on
        sftp.putfo(_bytes_io(b"still fine"), "ok.tmp")
        assert sftp.open("ok.tmp").read() == b"still fine"
        sftp.remove("ok.tmp")
    deadline = time.monotonic() + 5
    while hosted.server.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hosted.server.sessions == 0


def _bytes_io(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
